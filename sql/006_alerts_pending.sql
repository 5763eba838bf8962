-- 006 (monitor): alerts are claimed as 'pending' before the webhook is called, so two
-- monitor replicas never page twice for one key. Idempotent: safe to apply again.
ALTER TABLE monitoring.alerts DROP CONSTRAINT IF EXISTS alerts_status_check;
ALTER TABLE monitoring.alerts
    ADD CONSTRAINT alerts_status_check CHECK (status IN ('pending', 'sent', 'failed', 'skipped'));
