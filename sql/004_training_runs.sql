-- 004: trainer runs. Idempotent: safe to apply again.
-- One row per training the trainer started (or skipped, with why): the retrain guards read it
-- (cooldown between automatic retrains, minimum of new labelled rows since the last training).
CREATE TABLE IF NOT EXISTS monitoring.training_runs (
    run_id          TEXT PRIMARY KEY,
    model_name      TEXT             NOT NULL,
    trigger         TEXT             NOT NULL,
    status          TEXT             NOT NULL
        CHECK (status IN ('running', 'done', 'failed', 'skipped')),
    detail          TEXT,
    training_rows   BIGINT,
    holdout_rows    BIGINT,
    labelled_rows   BIGINT,
    data_objects    JSONB            NOT NULL DEFAULT '[]'::jsonb,
    model_version   TEXT,
    best_family     TEXT,
    holdout_pr_auc  DOUBLE PRECISION,
    correlation_id  TEXT             NOT NULL,
    started_at      TIMESTAMPTZ      NOT NULL,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS ix_training_runs_started
    ON monitoring.training_runs (model_name, started_at);
