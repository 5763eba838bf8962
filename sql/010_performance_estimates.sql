-- 010 (monitor): label-free performance estimates per scored batch, one row per metric, and the
-- realized value beside each once the batch's labels land. Idempotent: safe to apply again.
CREATE TABLE IF NOT EXISTS monitoring.performance_estimates (
    scoring_run_id   TEXT        NOT NULL,
    metric           TEXT        NOT NULL,
    model_name       TEXT        NOT NULL,
    model_version    TEXT        NOT NULL,
    rows             BIGINT      NOT NULL,
    value            DOUBLE PRECISION,
    lower            DOUBLE PRECISION,
    upper            DOUBLE PRECISION,
    reference_value  DOUBLE PRECISION,
    realized         DOUBLE PRECISION,
    realized_rows    BIGINT,
    realized_at      TIMESTAMPTZ,
    degraded_emitted BOOLEAN     NOT NULL DEFAULT FALSE,
    correlation_id   TEXT        NOT NULL,
    estimated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scoring_run_id, metric)
);
CREATE INDEX IF NOT EXISTS performance_estimates_model_idx
    ON monitoring.performance_estimates (model_name, model_version, estimated_at);
