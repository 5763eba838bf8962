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
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "password",
        "secret",
        "minioadmin",
        "admin",
        "postgres",
        "airflow",
        "xxx",
        "todo",
        "replace-me",
    }
)


class ConfigError(RuntimeError):
    """The configuration cannot run in the requested mode; the message says what to set."""


class Settings(BaseSettings):
    """Every knob of the platform; field names are the environment variables (any case)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    churnops_mode: Literal["embedded", "stack"] = Field(
        "embedded",
        description="embedded: no services needed; stack: Redis, Postgres, MinIO, MLflow.",
    )
    churnops_home: Path = Field(
        Path(".churnops"),
        description="Embedded mode: folder for the object store and SQLite files.",
    )

    # Postgres: monitoring schema and the MLflow backend (stack mode).
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "churnops"
    postgres_password: SecretStr = SecretStr("")
    postgres_db: str = "churnops"
    mlflow_postgres_db: str = "mlflow"
    monitoring_db_url: str | None = Field(
        None, description="Overrides the monitoring database URL built from POSTGRES_* values."
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
        4 * 3600,
        description="Redis redelivers an unacked task after this long: above the longest task.",
    )
    # Hard limits make a finite shutdown grace period safe: a worker asked to stop (compose
    # down, a Kubernetes scale-down) finishes its running task within the limit.
    task_time_limit_s: int = Field(
        30 * 60,
        ge=120,
        description="A task on any queue but the trainer's is stopped (and parked) past this.",
    )
    training_time_limit_s: int = Field(
        2 * 3600,
        ge=120,
        description="A trainer task (a whole training) is stopped (and parked) past this.",
    )
    task_retry_budget_s: float = Field(
        1800.0,
        gt=0,
        description="A message failing on a transient error is retried (with backoff) for this"
        " long from its first attempt before it is dead-lettered: outages shorter than this"
        " lose nothing.",
    )

    # Retention: the daily sweep prunes what is older (0 keeps it forever).
    retention_ledger_days: int = Field(
        30,
        ge=0,
        description="Finished processed-events rows kept this long (the window in which a"
        " redelivered event is recognised; far above the broker's visibility timeout).",
    )
    retention_dead_letters_days: int = Field(90, ge=0, description="Dead letters kept.")
    retention_parked_max: int = Field(
        10_000, ge=0, description="Newest malformed notifications kept in the parked list."
    )
    retention_studies_days: int = Field(
        30, ge=0, description="Optuna studies (in the Optuna storage) kept after their start."
    )
    retention_quality_runs_days: int = Field(
        90, ge=0, description="Quality MLflow runs (one per checked file) kept."
    )

    # MLflow.
    mlflow_tracking_uri: str | None = Field(
        None, description="Default: a SQLite file under CHURNOPS_HOME (embedded)."
    )
    mlflow_s3_endpoint_url: str | None = None
    mlflow_model_name: str = "churn-model"

    # Object storage (MinIO or any S3 server).
    minio_endpoint: str = Field("127.0.0.1:9000", description="host:port of the S3 API.")
    minio_secure: bool = False
    minio_root_user: str = Field("", description="MinIO's admin: only its setup job needs it.")
    minio_root_password: SecretStr = SecretStr("")
    minio_service_user: str = Field(
        "", description="The services' own S3 user (its buckets only); empty: the root user."
    )
    minio_service_password: SecretStr = SecretStr("")
    minio_upload_user: str = Field(
        "", description="`churnops drop`'s upload-only S3 user (put into landing, nothing else)."
    )
    minio_upload_password: SecretStr = SecretStr("")
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

    # Data quality (the quality service): how strict validation is.
    quality_max_file_mb: float = Field(
        1024.0, gt=0, description="Landed files larger than this are rejected unread."
    )
    quality_max_rows: int = Field(
        50_000_000,
        ge=1,
        description="Landed files with more rows are rejected (Parquet: from its footer, unread).",
    )
    quality_max_columns: int = Field(
        5_000, ge=1, description="Landed files with more columns are rejected from the header."
    )
    quality_max_header_kb: int = Field(
        1024, ge=1, description="A CSV header line longer than this is rejected unparsed."
    )
    quality_max_bad_value_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of rows with text in a numeric column tolerated (as missing, with a"
        " warning) before the file is rejected; 0 rejects any.",
    )
    quality_allow_duplicate_ids: bool = Field(
        False, description="Accept repeated ids with a warning instead of rejecting the file."
    )
    quality_reject_unseen_categories: bool = Field(
        False, description="Reject (instead of warn) on categories absent from the baseline."
    )
    quality_null_rate_jump: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Warn when a column's null rate exceeds the baseline's by this.",
    )
    quality_mlflow_enabled: bool = Field(
        True, description="Log an MLflow run `data_quality_psi` per quality run."
    )
    quality_pdf_enabled: bool = Field(
        True, description="Also render each quality report as PDF (WeasyPrint, where it runs)."
    )

    # Trainer: when a retrain may run, and how it is validated.
    retrain_cooldown_s: float = Field(
        3600.0,
        ge=0,
        description="Minimum seconds between two drift/performance-triggered retrains.",
    )
    retrain_min_new_labelled_rows: int = Field(
        500,
        ge=0,
        description="Drift/performance retrains need this many labelled rows newer than the"
        " last training; schedule, manual and new training sets bypass it.",
    )
    holdout_share: float = Field(
        0.4,
        gt=0,
        lt=1,
        description="Share of the most recent labelled batch held out for the promotion gate.",
    )
    optuna_storage_url: str | None = Field(
        None,
        description="Optuna RDB storage; default: the monitoring Postgres in stack mode,"
        " in memory in embedded mode.",
    )
    trainer_cv_max_rows: int = Field(
        50_000,
        ge=0,
        description="Training sets with fewer rows pick the model by the mean over k"
        " stratified folds; larger ones by a single validation split.",
    )
    trainer_cv_folds: int = Field(5, ge=2, description="k for the k-fold model selection.")
    gate_require_empc: bool = Field(
        False,
        description="The gate also refuses a challenger whose holdout EMPC (expected maximum"
        " profit, RETENTION_* economics) is below the champion's.",
    )
    gate_ece_tolerance: float = Field(
        0.02,
        ge=0,
        description="The gate refuses a challenger whose holdout expected calibration error"
        " is worse than the champion's by more than this.",
    )
    trainer_n_jobs: int = Field(
        1,
        ge=1,
        description="Threads per model fit in the trainer. Small tables train fastest on"
        " one: OpenMP threads spin and stall on a busy machine.",
    )
    # One search over every trainer replica (stack mode): the trainer holding the training lock
    # publishes TrialsRequested tasks; replicas that take one pull trials from the shared study.
    trainer_search_helpers: int = Field(
        8,
        ge=0,
        description="TrialsRequested tasks a training publishes for other trainer replicas"
        " (at most one per trial but the first; 0: the training runs every trial itself)."
        " Replicas beyond this many add nothing to one training.",
    )
    trainer_trial_heartbeat_s: int = Field(
        10, ge=1, description="A running trial records a heartbeat in the Optuna study this often."
    )
    trainer_trial_grace_s: int = Field(
        60,
        ge=2,
        description="A running trial without a heartbeat for this long (its trainer died) is"
        " failed and enqueued again with the same parameters.",
    )
    trainer_trial_retries: int = Field(
        2, ge=0, description="How often one trial is retried after its trainer died."
    )

    # Scorer: streaming batch scoring, splitting big files, reasons, retention list.
    scorer_chunk_rows: int = Field(
        50_000, ge=1, description="Rows read, scored and written at a time (bounds memory)."
    )
    scorer_split_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1,
        description="Batches larger than this (bytes) are split into ScoreChunkRequested tasks"
        " that several scorer replicas share.",
    )
    scorer_task_rows: int = Field(
        500_000, ge=1, description="Rows per chunk task when a large batch is split."
    )
    scorer_write_csv: bool = Field(
        False, description="Also write predictions.csv beside the Parquet predictions."
    )
    scorer_rescore_on_promotion: bool = Field(
        True, description="Rescore the latest scored batch with a newly promoted champion."
    )
    scorer_pr_auc_margin: float = Field(
        0.05,
        ge=0,
        description="RetrainRequested(performance) when a labelled batch's PR-AUC is below the"
        " champion's holdout PR-AUC by more than this.",
    )
    scorer_risk_medium: float = Field(
        0.3, gt=0, lt=1, description="Churn probability from which the risk band is medium."
    )
    scorer_risk_high: float = Field(
        0.6, gt=0, lt=1, description="Churn probability from which the risk band is high."
    )
    scorer_reasons: Literal["shap", "path"] = Field(
        "path",
        description="Per-row reasons: path = decision-path attribution from the model's own"
        " trees (additive; with the probability in one compiled pass, faster than the"
        " model's own predict on LightGBM); shap = exact TreeSHAP"
        " (ChurnPipeline.contributions; hundreds of times slower on deep trees).",
    )
    command_reports: Literal["background", "inline"] = Field(
        "background",
        description="How `churnops score` runs what its answer does not depend on (the scored"
        " file's quality report, the monitor's label-free estimate of the batch): background"
        " (one detached process, logged under CHURNOPS_HOME/logs/, so the command returns once"
        " its outputs are written and its run recorded) or inline (before it returns).",
    )
    scorer_reason_floor: float = Field(
        0.05,
        ge=0,
        description="A column counts as a reason only when it raises the churn log-odds by more"
        " than this (0.05: the odds x1.05); weaker or risk-lowering contributions are no"
        " reason, so a customer may have fewer than three.",
    )
    scorer_reason_units: dict[str, str] = Field(
        default_factory=lambda: {"tenure": "months"},
        description="Units shown after a numeric reason's value, per input column (JSON, e.g."
        ' {"tenure": "months", "balance": "EUR"}): `tenure = 2 months`. The default covers'
        " the usual churn-table spelling of tenure in months; other columns show bare numbers.",
    )
    # Retention campaign economics (defaults: Verbraken, Verbeke and Baesens, IEEE TKDE 2013).
    # They decide whom to contact (the profit cut) and price every profit figure.
    retention_value_column: str | None = Field(
        "monthly_charges",
        description="A customer's value column: CLV = this x RETENTION_VALUE_MULTIPLIER where"
        " the batch has it (a blank takes RETENTION_CLV); empty: RETENTION_CLV for all. A batch"
        " without the column is valued at RETENTION_CLV and a warning names this setting.",
    )
    retention_value_multiplier: float = Field(
        12.0,
        gt=0,
        description="CLV = value column x this (e.g. the months a retained customer stays).",
    )
    retention_clv: float = Field(
        200.0, description="Value of a retained customer when there is no value column."
    )
    retention_incentive_cost: float = Field(
        10.0, ge=0, description="The incentive offered (paid by whoever accepts it)."
    )
    retention_contact_cost: float = Field(1.0, ge=0, description="Cost of one contact.")
    retention_accept_alpha: float = Field(
        6.0, gt=0, description="Share of contacted churners who accept ~ Beta(alpha, beta)."
    )
    retention_accept_beta: float = Field(14.0, gt=0, description="See RETENTION_ACCEPT_ALPHA.")
    retention_capacity: int | None = Field(
        None,
        ge=0,
        description="Most customers contacted per batch (0: nobody); empty: no limit.",
    )
    retention_budget: float | None = Field(
        None, ge=0, description="Most expected spend per batch; empty: no limit."
    )
    retention_top_k: int = Field(
        1000,
        ge=1,
        description="Customers shown in each retention list, best expected profit first (the"
        " list holds every contacted customer when a capacity or budget bounds them).",
    )

    # Alerts.
    alert_webhook_url: str | None = None
    alert_timeout_s: float = Field(
        3.0, gt=0, description="Seconds one webhook attempt may take before it is abandoned."
    )
    alert_max_attempts: int = Field(3, ge=1, description="Webhook attempts per alert.")
    alert_budget_s: float = Field(
        10.0, gt=0, description="Upper bound on the time one alert may spend, retries included."
    )

    # Monitor: live performance, segments and the drift report.
    monitor_top_k_share: float = Field(
        0.1, gt=0, le=1, description="Precision at top K: K is this share of the labelled rows."
    )
    monitor_min_roc_auc: float = Field(
        0.70, ge=0, le=1, description="PerformanceDegraded when live ROC-AUC falls below this."
    )
    monitor_min_pr_auc: float = Field(
        0.40, ge=0, le=1, description="PerformanceDegraded when live PR-AUC falls below this."
    )
    monitor_estimated_pr_auc_drop: float = Field(
        0.05,
        ge=0,
        le=1,
        description="PerformanceDegraded (estimated) when a batch's whole estimated PR-AUC band"
        " lies this far below the model's reference PR-AUC, before any label lands.",
    )
    monitor_min_labelled_rows: int = Field(
        100, ge=1, description="Fewer labelled rows than this never raise PerformanceDegraded."
    )
    monitor_segment_columns: str = Field(
        "",
        description="Comma-separated segment columns; empty: low-cardinality categoricals"
        " plus quantile buckets of the model's key numeric columns.",
    )
    monitor_window_days: int = Field(
        7, ge=1, description="The monitoring report covers batches scored in this many days."
    )
    monitor_report_max_rows: int = Field(
        50_000, ge=100, description="Row cap per side of the drift report (sampled beyond)."
    )

    # Ingestion (the ingest service): warehouse queries and HTTP APIs into the landing bucket.
    ingest_sources_file: Path = Field(
        Path("ingest_sources.yaml"),
        description="YAML file naming the sources `churnops ingest SOURCE` and dag_ingest pull.",
    )
    ingest_api_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token for HTTP sources that name no `token_env` of their own.",
    )
    ingest_batch_rows: int = Field(
        10_000, ge=100, description="Rows fetched per round trip and written per Parquet part."
    )
    ingest_http_timeout_s: float = Field(30.0, gt=0, description="Per HTTP request.")
    ingest_http_retries: int = Field(
        5, ge=0, description="Retries of an HTTP page on 429 (after Retry-After) or 5xx."
    )
    ingest_http_backoff_s: float = Field(
        0.5, ge=0, description="Backoff factor between HTTP retries (doubles each time)."
    )
    # Prometheus metrics (workers and the bridge; multiprocess mode under prefork).
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of a worker's or the bridge's Prometheus /metrics; 0 turns it off.",
    )
    metrics_bind: str = Field(
        "127.0.0.1", description="Address /metrics binds to (0.0.0.0 inside a container)."
    )
    grafana_db_password: SecretStr = Field(
        SecretStr(""),
        description="`churnops db upgrade` lets Grafana's read-only role log in with this;"
        " empty: the role stays unable to log in.",
    )

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

    def s3_credentials(self) -> tuple[str, str]:
        """(access key, secret key) of this process: the services' user, else the root user."""
        if self.minio_service_user:
            return self.minio_service_user, self.minio_service_password.get_secret_value()
        return self.minio_root_user, self.minio_root_password.get_secret_value()

    def upload_credentials(self) -> tuple[str, str]:
        """What `churnops drop` uploads with: the upload-only user when set."""
        if self.minio_upload_user:
            return self.minio_upload_user, self.minio_upload_password.get_secret_value()
        return self.s3_credentials()

    def _postgres_url(self, database: str) -> str:
        password = self.postgres_password.get_secret_value()
        auth = f"{self.postgres_user}:{password}" if password else self.postgres_user
        host = f"{self.postgres_host}:{self.postgres_port}"
        return f"postgresql+psycopg://{auth}@{host}/{database}"

    def missing_stack_secrets(self) -> list[str]:
        """Names of the secrets stack mode needs that are unset or still placeholders."""
        secrets = {"POSTGRES_PASSWORD": self.postgres_password.get_secret_value()}
        if self.minio_service_user:
            secrets["MINIO_SERVICE_PASSWORD"] = self.minio_service_password.get_secret_value()
        else:
            secrets["MINIO_ROOT_USER"] = self.minio_root_user
            secrets["MINIO_ROOT_PASSWORD"] = self.minio_root_password.get_secret_value()
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
    """The process-wide settings, validated for their mode (tests call `cache_clear()`)."""
    return Settings().check()
