-- 013 (scorer, embedded mode): the digest of each model version's compiled scoring form (its
-- trees' tables, preprocessing and calibration, pickled beside the verified local copy of its
-- files), the artifact digest it was built from and the code that wrote it. A command loads the
-- form instead of the model's own library only while all match. Idempotent: safe to apply again.
CREATE TABLE IF NOT EXISTS monitoring.scoring_forms (
    model_name      TEXT        NOT NULL,
    model_version   TEXT        NOT NULL,
    artifact_sha256 TEXT        NOT NULL,
    code_sha256     TEXT        NOT NULL,
    form_sha256     TEXT        NOT NULL,
    form_size       BIGINT      NOT NULL,
    built_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model_name, model_version)
);
