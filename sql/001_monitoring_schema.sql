-- 001: the monitoring schema. Idempotent: safe to apply again.
-- Mirrors churnops_common/db/tables.py (a test compares the two).
CREATE SCHEMA IF NOT EXISTS monitoring;

-- Every handled (task, idempotency key) pair: at-least-once delivery, exactly-once effects.
CREATE TABLE IF NOT EXISTS monitoring.processed_events (
    id              BIGSERIAL PRIMARY KEY,
    task_name       TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    event_id        TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    correlation_id  TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 1,
    followups       INTEGER     NOT NULL DEFAULT 0,
    error           TEXT,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    CONSTRAINT uq_processed_events_task_key UNIQUE (task_name, idempotency_key)
);
CREATE INDEX IF NOT EXISTS ix_processed_events_correlation
    ON monitoring.processed_events (correlation_id);

-- Messages that could not be handled (invalid payload, permanent error, retries exhausted).
CREATE TABLE IF NOT EXISTS monitoring.dead_letters (
    id             BIGSERIAL PRIMARY KEY,
    task_name      TEXT        NOT NULL,
    event_id       TEXT,
    correlation_id TEXT,
    payload        TEXT        NOT NULL,
    error          TEXT        NOT NULL,
    attempts       INTEGER     NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dead_letters_correlation
    ON monitoring.dead_letters (correlation_id);

-- One row per validated file.
CREATE TABLE IF NOT EXISTS monitoring.quality_runs (
    run_id         TEXT PRIMARY KEY,
    bucket         TEXT        NOT NULL,
    object_key     TEXT        NOT NULL,
    etag           TEXT        NOT NULL,
    kind           TEXT,
    status         TEXT        NOT NULL CHECK (status IN ('accepted', 'rejected')),
    reason         TEXT,
    rows           BIGINT,
    has_target     BOOLEAN     NOT NULL DEFAULT FALSE,
    max_psi        DOUBLE PRECISION,
    psi_breached   BOOLEAN     NOT NULL DEFAULT FALSE,
    warnings       JSONB       NOT NULL DEFAULT '[]'::jsonb,
    details        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    report_uri     TEXT,
    correlation_id TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_quality_runs_object
    ON monitoring.quality_runs (bucket, object_key, etag);

-- Per-feature PSI of each quality run.
CREATE TABLE IF NOT EXISTS monitoring.feature_psi (
    run_id   TEXT             NOT NULL REFERENCES monitoring.quality_runs (run_id),
    feature  TEXT             NOT NULL,
    psi      DOUBLE PRECISION NOT NULL,
    breached BOOLEAN          NOT NULL,
    PRIMARY KEY (run_id, feature)
);

-- One row per scored batch (from the original stack, plus the input's identity).
CREATE TABLE IF NOT EXISTS monitoring.scoring_runs (
    run_id          TEXT PRIMARY KEY,
    input_bucket    TEXT             NOT NULL,
    input_key       TEXT             NOT NULL,
    input_etag      TEXT             NOT NULL,
    predictions_uri TEXT             NOT NULL,
    model_name      TEXT             NOT NULL,
    model_version   TEXT             NOT NULL,
    rows            BIGINT           NOT NULL,
    duration_s      DOUBLE PRECISION NOT NULL,
    score_mean      DOUBLE PRECISION,
    score_p50       DOUBLE PRECISION,
    score_p90       DOUBLE PRECISION,
    high_risk_share DOUBLE PRECISION,
    roc_auc         DOUBLE PRECISION,
    pr_auc          DOUBLE PRECISION,
    correlation_id  TEXT             NOT NULL,
    created_at      TIMESTAMPTZ      NOT NULL,
    CONSTRAINT uq_scoring_runs_input_model
        UNIQUE (input_bucket, input_key, input_etag, model_name, model_version)
);

-- Metrics per segment of a scored/labelled population (from the original stack).
CREATE TABLE IF NOT EXISTS monitoring.segment_metrics (
    id             BIGSERIAL PRIMARY KEY,
    run_id         TEXT             NOT NULL,
    model_version  TEXT,
    segment_column TEXT             NOT NULL,
    segment_value  TEXT             NOT NULL,
    rows           BIGINT           NOT NULL,
    positive_rate  DOUBLE PRECISION,
    mean_score     DOUBLE PRECISION,
    false_positive_rate DOUBLE PRECISION,
    false_negative_rate DOUBLE PRECISION,
    roc_auc        DOUBLE PRECISION,
    flagged        BOOLEAN          NOT NULL DEFAULT FALSE,
    computed_at    TIMESTAMPTZ      NOT NULL,
    CONSTRAINT uq_segment_metrics UNIQUE (run_id, segment_column, segment_value)
);

-- Every promotion decision with both scores: the audit trail MLflow does not keep.
CREATE TABLE IF NOT EXISTS monitoring.model_promotions (
    id                 BIGSERIAL PRIMARY KEY,
    model_name         TEXT             NOT NULL,
    challenger_version TEXT             NOT NULL,
    champion_version   TEXT,
    challenger_pr_auc  DOUBLE PRECISION NOT NULL,
    champion_pr_auc    DOUBLE PRECISION,
    decision           TEXT             NOT NULL CHECK (decision IN ('promoted', 'rejected')),
    reason             TEXT             NOT NULL,
    trigger            TEXT,
    correlation_id     TEXT             NOT NULL,
    decided_at         TIMESTAMPTZ      NOT NULL,
    CONSTRAINT uq_model_promotions_challenger UNIQUE (model_name, challenger_version)
);

-- Alerts sent (or attempted) to the webhook.
CREATE TABLE IF NOT EXISTS monitoring.alerts (
    id             BIGSERIAL PRIMARY KEY,
    alert_key      TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    message        TEXT        NOT NULL,
    payload        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status         TEXT        NOT NULL CHECK (status IN ('sent', 'failed', 'skipped')),
    attempts       INTEGER     NOT NULL DEFAULT 0,
    error          TEXT,
    correlation_id TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT uq_alerts_key UNIQUE (alert_key)
);
