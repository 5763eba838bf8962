"""The monitoring tables as SQLAlchemy Core metadata, mirroring `sql/` for Postgres.

On Postgres they live in schema `monitoring` (created by the SQL migrations); on SQLite, the
same tables are created from this metadata with the schema name mapped away.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "monitoring"
metadata = MetaData(schema=SCHEMA)

# JSONB on Postgres, JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")
# BIGSERIAL on Postgres, INTEGER PRIMARY KEY (rowid alias) on SQLite.
Serial = BigInteger().with_variant(Integer(), "sqlite")
TZ = DateTime(timezone=True)

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("checksum", Text, nullable=False),
    Column("applied_at", TZ, nullable=False),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("task_name", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("correlation_id", Text, nullable=False, index=True),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("followups", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("started_at", TZ, nullable=False),
    Column("finished_at", TZ),
    UniqueConstraint("task_name", "idempotency_key", name="uq_processed_events_task_key"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("task_name", Text, nullable=False),
    Column("event_id", Text),
    Column("correlation_id", Text, index=True),
    Column("payload", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("created_at", TZ, nullable=False),
)

quality_runs = Table(
    "quality_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("bucket", Text, nullable=False),
    Column("object_key", Text, nullable=False),
    Column("etag", Text, nullable=False),
    Column("kind", Text),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("rows", BigInteger),
    Column("has_target", Boolean, nullable=False, default=False),
    Column("max_psi", Float),
    Column("psi_breached", Boolean, nullable=False, default=False),
    Column("warnings", Json, nullable=False, default=list),
    Column("details", Json, nullable=False, default=dict),
    Column("report_uri", Text),
    Column("correlation_id", Text, nullable=False),
    Column("created_at", TZ, nullable=False),
)

feature_psi = Table(
    "feature_psi",
    metadata,
    Column("run_id", Text, ForeignKey(f"{SCHEMA}.quality_runs.run_id"), nullable=False),
    Column("feature", Text, nullable=False),
    Column("psi", Float, nullable=False),
    Column("breached", Boolean, nullable=False),
    PrimaryKeyConstraint("run_id", "feature"),
)

scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("input_bucket", Text, nullable=False),
    Column("input_key", Text, nullable=False),
    Column("input_etag", Text, nullable=False),
    Column("predictions_uri", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("score_mean", Float),
    Column("score_p50", Float),
    Column("score_p90", Float),
    Column("high_risk_share", Float),
    Column("roc_auc", Float),
    Column("pr_auc", Float),
    Column("correlation_id", Text, nullable=False),
    Column("created_at", TZ, nullable=False),
    UniqueConstraint(
        "input_bucket",
        "input_key",
        "input_etag",
        "model_name",
        "model_version",
        name="uq_scoring_runs_input_model",
    ),
)

segment_metrics = Table(
    "segment_metrics",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("model_version", Text),
    Column("segment_column", Text, nullable=False),
    Column("segment_value", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("positive_rate", Float),
    Column("mean_score", Float),
    Column("false_positive_rate", Float),
    Column("false_negative_rate", Float),
    Column("roc_auc", Float),
    Column("flagged", Boolean, nullable=False, default=False),
    Column("computed_at", TZ, nullable=False),
    UniqueConstraint("run_id", "segment_column", "segment_value", name="uq_segment_metrics"),
)

model_promotions = Table(
    "model_promotions",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("model_name", Text, nullable=False),
    Column("challenger_version", Text, nullable=False),
    Column("champion_version", Text),
    Column("challenger_pr_auc", Float, nullable=False),
    Column("champion_pr_auc", Float),
    Column("decision", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("trigger", Text),
    Column("correlation_id", Text, nullable=False),
    Column("decided_at", TZ, nullable=False),
    # 007: the registered artifact's digest; loaders verify the files against it.
    Column("artifact_sha256", Text),
    Column("artifact_size", BigInteger),
    UniqueConstraint("model_name", "challenger_version", name="uq_model_promotions_challenger"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Serial, primary_key=True),
    Column("alert_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", Json, nullable=False, default=dict),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("correlation_id", Text),
    Column("created_at", TZ, nullable=False),
    UniqueConstraint("alert_key", name="uq_alerts_key"),
)

# 004 (trainer): every training started or skipped; the retrain guards read it.
training_runs = Table(
    "training_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("model_name", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("detail", Text),
    Column("training_rows", BigInteger),
    Column("holdout_rows", BigInteger),
    Column("labelled_rows", BigInteger),
    Column("data_objects", Json, nullable=False, default=list),
    Column("model_version", Text),
    Column("best_family", Text),
    Column("holdout_pr_auc", Float),
    Column("correlation_id", Text, nullable=False),
    Column("started_at", TZ, nullable=False),
    Column("finished_at", TZ),
)

# 002 (monitor): live performance per model version and labelled source.
# Label-free estimates of a scored batch's metrics (monitor), the realized value beside each.
performance_estimates = Table(
    "performance_estimates",
    metadata,
    Column("scoring_run_id", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("value", Float),
    Column("lower", Float),
    Column("upper", Float),
    Column("reference_value", Float),
    Column("realized", Float),
    Column("realized_rows", BigInteger),
    Column("realized_at", TZ),
    Column("degraded_emitted", Boolean, nullable=False, default=False),
    Column("correlation_id", Text, nullable=False),
    Column("estimated_at", TZ, nullable=False),
    PrimaryKeyConstraint("scoring_run_id", "metric"),
)

performance_metrics = Table(
    "performance_metrics",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_bucket", Text, nullable=False),
    Column("source_key", Text, nullable=False),
    Column("source_etag", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("scoring_run_ids", Json, nullable=False, default=list),
    Column("rows", BigInteger, nullable=False),
    Column("unmatched_rows", BigInteger, nullable=False, default=0),
    Column("positives", BigInteger, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("roc_auc", Float),
    Column("pr_auc", Float),
    Column("precision_at_threshold", Float),
    Column("recall_at_threshold", Float),
    Column("top_k", Integer, nullable=False),
    Column("precision_at_k", Float),
    Column("brier", Float),
    Column("calibration", Json, nullable=False, default=list),
    Column("outcome_from", TZ),
    Column("outcome_to", TZ),
    Column("degraded_metrics", Json, nullable=False, default=list),
    Column("degraded_emitted", Boolean, nullable=False, default=False),
    Column("correlation_id", Text, nullable=False),
    Column("computed_at", TZ, nullable=False),
)

# 002 (monitor): one row per monitoring report, built or skipped.
monitoring_reports = Table(
    "monitoring_reports",
    metadata,
    Column("report_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("window_start", TZ, nullable=False),
    Column("window_end", TZ, nullable=False),
    Column("scoring_runs", Integer, nullable=False, default=0),
    Column("current_rows", BigInteger, nullable=False, default=0),
    Column("labelled_rows", BigInteger, nullable=False, default=0),
    Column("reference_source", Text),
    Column("reference_uri", Text),
    Column("report_uris", Json, nullable=False, default=list),
    Column("metrics", Json, nullable=False, default=dict),
    Column("mlflow_run_id", Text),
    Column("correlation_id", Text, nullable=False),
    Column("created_at", TZ, nullable=False),
)

# 005 (scorer): progress of large batches split into chunk tasks.
scoring_jobs = Table(
    "scoring_jobs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("input_bucket", Text, nullable=False),
    Column("input_key", Text, nullable=False),
    Column("input_etag", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("has_target", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("assembler_chunk", Integer),
    Column("correlation_id", Text, nullable=False),
    Column("started_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

scoring_chunks = Table(
    "scoring_chunks",
    metadata,
    Column("run_id", Text, ForeignKey(f"{SCHEMA}.scoring_jobs.run_id"), nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("part_key", Text, nullable=False),
    Column("finished_at", TZ, nullable=False),
    PrimaryKeyConstraint("run_id", "chunk_index"),
)

# 012 (scorer, monitor): the retention campaign of each scored batch (the profit cut's totals),
# and the realized profit of the cut against two plain policies once a batch's labels land.
retention_campaigns = Table(
    "retention_campaigns",
    metadata,
    Column("scoring_run_id", Text, primary_key=True),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("contacted", BigInteger, nullable=False),
    Column("expected_cost", Float, nullable=False),
    Column("expected_retained", Float, nullable=False),
    Column("expected_profit", Float, nullable=False),
    Column("capacity", BigInteger),
    Column("budget", Float),
    Column("created_at", TZ, nullable=False),
)

realized_profits = Table(
    "realized_profits",
    metadata,
    Column("run_id", Text, primary_key=True),  # the performance_metrics row it sits beside
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("contacted", BigInteger, nullable=False),
    Column("profit", Float, nullable=False),
    Column("contacted_top10", BigInteger, nullable=False),
    Column("profit_top10", Float, nullable=False),
    Column("contacted_p50", BigInteger, nullable=False),
    Column("profit_p50", Float, nullable=False),
    Column("computed_at", TZ, nullable=False),
)

# 013 (scorer, embedded mode): the compiled scoring form kept beside a verified model copy
# (its trees' tables, preprocessing and calibration, loadable without the model's library),
# trusted only while its digest equals this row's and the row names the artifact it came from
# and the code that wrote it.
scoring_forms = Table(
    "scoring_forms",
    metadata,
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("artifact_sha256", Text, nullable=False),
    Column("code_sha256", Text, nullable=False),
    Column("form_sha256", Text, nullable=False),
    Column("form_size", BigInteger, nullable=False),
    Column("built_at", TZ, nullable=False),
    PrimaryKeyConstraint("model_name", "model_version"),
)
