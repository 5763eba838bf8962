-- 005 (scorer): progress of large batches split into chunk tasks shared by scorer replicas.
-- One job per (input object, etag, model version); one row per finished chunk. The last chunk
-- to finish claims the job (status running -> assembling) under a row lock, so exactly one
-- worker assembles the output and writes the scoring_runs row.
CREATE TABLE IF NOT EXISTS monitoring.scoring_jobs (
    run_id          TEXT PRIMARY KEY,
    input_bucket    TEXT        NOT NULL,
    input_key       TEXT        NOT NULL,
    input_etag      TEXT        NOT NULL,
    model_name      TEXT        NOT NULL,
    model_version   TEXT        NOT NULL,
    chunk_count     INTEGER     NOT NULL,
    has_target      BOOLEAN     NOT NULL,
    status          TEXT        NOT NULL,
    assembler_chunk INTEGER,
    correlation_id  TEXT        NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS monitoring.scoring_chunks (
    run_id      TEXT             NOT NULL REFERENCES monitoring.scoring_jobs (run_id),
    chunk_index INTEGER          NOT NULL,
    rows        BIGINT           NOT NULL,
    seconds     DOUBLE PRECISION NOT NULL,
    part_key    TEXT             NOT NULL,
    finished_at TIMESTAMPTZ      NOT NULL,
    PRIMARY KEY (run_id, chunk_index)
);
