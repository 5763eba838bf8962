-- 009: a read-only role for Grafana's Postgres data source. Idempotent: safe to apply again.
-- It may read the monitoring schema and nothing else, in read-only transactions. It cannot log
-- in until `churnops db upgrade` gives it GRAFANA_DB_PASSWORD (no secret lives in a migration).
-- Roles belong to the whole server: two databases migrating at once may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'churnops_grafana') THEN
        CREATE ROLE churnops_grafana NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
ALTER ROLE churnops_grafana SET default_transaction_read_only = on;
GRANT USAGE ON SCHEMA monitoring TO churnops_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA monitoring TO churnops_grafana;
-- Tables later migrations create (as the same owner) are readable too.
ALTER DEFAULT PRIVILEGES IN SCHEMA monitoring GRANT SELECT ON TABLES TO churnops_grafana;
