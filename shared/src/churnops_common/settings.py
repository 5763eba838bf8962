"""One settings object for every process, read from the environment and `.env`.

Embedded mode (the default) needs nothing but Python: a local folder is the object store, SQLite
holds the monitoring tables and MLflow runs on a local SQLite file. Stack mode talks to Redis,
Postgres, MinIO and an MLflow server, and refuses to start on missing or placeholder secrets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that mean "nobody set this": copied from an example file or a tutorial.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "password", "secret", "minioadmin", "admin",
     "postgres", "airflow", "xxx", "todo", "replace-me"}
)


class ConfigError(RuntimeError):
    """The configuration cannot run in the requested mode; the message says what to set."""


class Settings(BaseSettings):
    """Every knob of the platform. Field names match the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    churnops_mode: Literal["embedded", "stack"] = Field(
        "embedded", description="embedded: no services needed; stack: Redis, Postgres, MinIO, MLflow."
    )
    churnops_home: Path = Field(
        Path(".churnops"), description="Embedded mode: folder for the object store and SQLite files."
    )

    # Postgres: monitoring schema and the MLflow backend (stack mode).
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "churnops"
    postgres_password: SecretStr = SecretStr("")
    postgres_db: str = "churnops"
    mlflow_postgres_db: str = "mlflow"
    monitoring_db_url: str | None = Field(
        None, description="Overrides the monitoring database URL built from the POSTGRES_* values."
    )

    # Airflow (only its own containers read these; listed so one .env serves the stack).
    airflow__core__fernet_key: SecretStr = SecretStr("")
    airflow_www_user_username: str = Field("airflow", alias="_AIRFLOW_WWW_USER_USERNAME")
    airflow_www_user_password: SecretStr = Field(SecretStr(""), alias="_AIRFLOW_WWW_USER_PASSWORD")

    # Event bus.
    redis_url: str = "redis://127.0.0.1:6379/0"
    minio_notify_redis_key: str = Field(
        "minio:events", description="Redis list that MinIO's notification target pushes to."
    )
    task_visibility_timeout_s: int = Field(
        4 * 3600, description="Redis redelivers an unacked task after this long: above the longest task."
    )
    task_max_retries: int = 5

    # MLflow.
    mlflow_tracking_uri: str | None = Field(
        None, description="Default: a SQLite file under CHURNOPS_HOME (embedded)."
    )
    mlflow_s3_endpoint_url: str | None = None
    mlflow_model_name: str = "churn-model"

    # Object storage (MinIO or any S3 server).
    minio_endpoint: str = Field("127.0.0.1:9000", description="host:port of the S3 API.")
    minio_secure: bool = False
    minio_root_user: str = ""
    minio_root_password: SecretStr = SecretStr("")
    minio_region: str | None = None
    s3_artifact_bucket: str = "mlflow"
    minio_landing_bucket: str = "landing"
    minio_models_bucket: str = "models"
    minio_reports_bucket: str = "reports"
    minio_predictions_bucket: str = "predictions"

    # Data and ML.
    target_column: str = "churned"
    id_column: str = "customer_id"
    optuna_n_trials: int = Field(30, ge=1)
    psi_threshold: float = Field(0.2, gt=0)
    pr_auc_shadow_threshold: float = Field(
        0.01, ge=0, description="A challenger must beat the champion's PR-AUC by this much."
    )
    baseline_share: float = Field(0.2, gt=0, le=1)

    # Alerts.
    alert_webhook_url: str | None = None

    @property
    def buckets(self) -> tuple[str, ...]:
        """Every bucket the platform writes to or reads from."""
        return (
            self.minio_landing_bucket,
            self.s3_artifact_bucket,
            self.minio_models_bucket,
            self.minio_reports_bucket,
            self.minio_predictions_bucket,
        )

    @property
    def is_stack(self) -> bool:
        return self.churnops_mode == "stack"

    def monitoring_url(self) -> str:
        """SQLAlchemy URL of the monitoring tables (psycopg 3 driver for Postgres)."""
        if self.monitoring_db_url:
            return self.monitoring_db_url
        if not self.is_stack:
            return f"sqlite:///{self.churnops_home / 'monitoring.db'}"
        return self._postgres_url(self.postgres_db)

    def mlflow_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if not self.is_stack:
            return f"sqlite:///{(self.churnops_home / 'mlflow.db').resolve()}"
        return "http://mlflow:5000"

    def _postgres_url(self, database: str) -> str:
        password = self.postgres_password.get_secret_value()
        auth = f"{self.postgres_user}:{password}" if password else self.postgres_user
        return f"postgresql+psycopg://{auth}@{self.postgres_host}:{self.postgres_port}/{database}"

    def missing_stack_secrets(self) -> list[str]:
        """Names of the secrets stack mode needs that are unset or still placeholders."""
        secrets = {
            "POSTGRES_PASSWORD": self.postgres_password.get_secret_value(),
            "MINIO_ROOT_USER": self.minio_root_user,
            "MINIO_ROOT_PASSWORD": self.minio_root_password.get_secret_value(),
        }
        return [
            name for name, value in secrets.items() if value.strip().lower() in PLACEHOLDER_SECRETS
        ]

    def check(self) -> Settings:
        """Refuse to run stack mode on missing or placeholder secrets; returns self."""
        if self.is_stack:
            missing = self.missing_stack_secrets()
            if missing:
                raise ConfigError(
                    "stack mode needs real secrets; set "
                    + ", ".join(missing)
                    + " in the environment or .env (see .env.example)"
                )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated for their mode. Tests call `get_settings.cache_clear()`."""
    return Settings().check()
