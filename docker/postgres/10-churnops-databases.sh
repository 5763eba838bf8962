#!/bin/sh
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
# POSTGRES_DB (the monitoring schema, applied by `churnops db upgrade`) is created by the image;
# this adds the MLflow backend and the Airflow metadata databases, owned by the same user.
set -eu

create_database() {
    # \gexec runs the generated statement only when the database does not exist yet.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        --set=dbname="$1" --set=owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname')\gexec
SQL
}

create_database "${MLFLOW_POSTGRES_DB:?MLFLOW_POSTGRES_DB is not set}"
create_database "${AIRFLOW_POSTGRES_DB:?AIRFLOW_POSTGRES_DB is not set}"
