-- 002: the monitor service's tables. Idempotent: safe to apply again.
-- Mirrors the performance_metrics and monitoring_reports tables in churnops_common/db/tables.py.

-- Live performance of one model version on one labelled source (a labels file, or a scored
-- batch that carried its own target). run_id is derived from the source and the version.
CREATE TABLE IF NOT EXISTS monitoring.performance_metrics (
    run_id                 TEXT PRIMARY KEY,
    source                 TEXT             NOT NULL CHECK (source IN ('labels', 'batch')),
    source_bucket          TEXT             NOT NULL,
    source_key             TEXT             NOT NULL,
    source_etag            TEXT             NOT NULL,
    model_name             TEXT             NOT NULL,
    model_version          TEXT             NOT NULL,
    scoring_run_ids        JSONB            NOT NULL DEFAULT '[]'::jsonb,
    rows                   BIGINT           NOT NULL,
    unmatched_rows         BIGINT           NOT NULL DEFAULT 0,
    positives              BIGINT           NOT NULL,
    threshold              DOUBLE PRECISION NOT NULL,
    roc_auc                DOUBLE PRECISION,
    pr_auc                 DOUBLE PRECISION,
    precision_at_threshold DOUBLE PRECISION,
    recall_at_threshold    DOUBLE PRECISION,
    top_k                  INTEGER          NOT NULL,
    precision_at_k         DOUBLE PRECISION,
    brier                  DOUBLE PRECISION,
    calibration            JSONB            NOT NULL DEFAULT '[]'::jsonb,
    outcome_from           TIMESTAMPTZ,
    outcome_to             TIMESTAMPTZ,
    degraded_metrics       JSONB            NOT NULL DEFAULT '[]'::jsonb,
    degraded_emitted       BOOLEAN          NOT NULL DEFAULT FALSE,
    correlation_id         TEXT             NOT NULL,
    computed_at            TIMESTAMPTZ      NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_performance_metrics_model
    ON monitoring.performance_metrics (model_name, model_version);

-- One row per monitoring (Evidently) report, built or skipped with its reason.
CREATE TABLE IF NOT EXISTS monitoring.monitoring_reports (
    report_id        TEXT PRIMARY KEY,
    status           TEXT        NOT NULL CHECK (status IN ('done', 'skipped')),
    reason           TEXT,
    window_start     TIMESTAMPTZ NOT NULL,
    window_end       TIMESTAMPTZ NOT NULL,
    scoring_runs     INTEGER     NOT NULL DEFAULT 0,
    current_rows     BIGINT      NOT NULL DEFAULT 0,
    labelled_rows    BIGINT      NOT NULL DEFAULT 0,
    reference_source TEXT,
    reference_uri    TEXT,
    report_uris      JSONB       NOT NULL DEFAULT '[]'::jsonb,
    metrics          JSONB       NOT NULL DEFAULT '{}'::jsonb,
    mlflow_run_id    TEXT,
    correlation_id   TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
