-- 007 (trainer): the sha256 and size of each registered model's files, recorded with its
-- promotion decision; every loader verifies the downloaded files against them before
-- unpickling. Idempotent: safe to apply again.
ALTER TABLE monitoring.model_promotions ADD COLUMN IF NOT EXISTS artifact_sha256 TEXT;
ALTER TABLE monitoring.model_promotions ADD COLUMN IF NOT EXISTS artifact_size BIGINT;
