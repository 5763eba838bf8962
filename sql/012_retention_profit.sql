-- 012 (scorer, monitor): the retention campaign of each scored batch (the profit cut's totals),
-- and the realized profit of the cut against two plain policies (the top tenth by probability,
-- probability >= 0.5) once a batch's labels land, beside its performance_metrics row.
-- Idempotent: safe to apply again.
CREATE TABLE IF NOT EXISTS monitoring.retention_campaigns (
    scoring_run_id    TEXT PRIMARY KEY,
    model_name        TEXT             NOT NULL,
    model_version     TEXT             NOT NULL,
    rows              BIGINT           NOT NULL,
    contacted         BIGINT           NOT NULL,
    expected_cost     DOUBLE PRECISION NOT NULL,
    expected_retained DOUBLE PRECISION NOT NULL,
    expected_profit   DOUBLE PRECISION NOT NULL,
    capacity          BIGINT,
    budget            DOUBLE PRECISION,
    created_at        TIMESTAMPTZ      NOT NULL
);
CREATE TABLE IF NOT EXISTS monitoring.realized_profits (
    run_id          TEXT PRIMARY KEY,
    model_name      TEXT             NOT NULL,
    model_version   TEXT             NOT NULL,
    rows            BIGINT           NOT NULL,
    contacted       BIGINT           NOT NULL,
    profit          DOUBLE PRECISION NOT NULL,
    contacted_top10 BIGINT           NOT NULL,
    profit_top10    DOUBLE PRECISION NOT NULL,
    contacted_p50   BIGINT           NOT NULL,
    profit_p50      DOUBLE PRECISION NOT NULL,
    computed_at     TIMESTAMPTZ      NOT NULL
);
