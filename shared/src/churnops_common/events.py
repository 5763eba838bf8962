"""Event contracts: versioned, immutable messages that carry object URIs and ids, never data.

Every event has an `event_id`, the `correlation_id` of the chain that one landed file (or one
schedule tick) starts, the `causation_id` of the event that caused it, and `occurred_at` in UTC.
Follow-up events get deterministic ids (`derive`), so a handler that runs twice publishes the same
follow-ups twice, and the subscribers' ledgers drop the second copy.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

_NAMESPACE = uuid.UUID("6f1d3c1e-6c55-4b8a-9f2e-8d3c2b1a0e77")

DataKind = Literal["new_data", "labels", "training"]
RetrainReason = Literal["schedule", "manual", "performance", "drift", "new_training_data"]


def stable_id(*parts: str) -> str:
    """A UUID derived from text, the same on every machine: used for idempotent follow-ups."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def utc_now() -> datetime:
    return datetime.now(UTC)


def event_type_of(event_cls: type[Event]) -> str:
    """The literal `event_type` a class declares (its name on the wire)."""
    return str(event_cls.model_fields["event_type"].default)


class ObjectRef(BaseModel):
    """One object in storage, pinned to the version that was seen (etag)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    etag: str = ""
    size: int | None = Field(None, ge=0)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def versioned_uri(self) -> str:
        """`bucket/key@etag`: the idempotency key of a landed file."""
        return f"{self.bucket}/{self.key}@{self.etag}"


class Event(BaseModel):
    """Base of every event. Subclasses set `event_type` and `schema_version` as literals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    schema_version: Literal[1] = 1
    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None
    occurred_at: AwareDatetime = Field(default_factory=utc_now)

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def idempotency_key(self) -> str:
        """What makes two deliveries "the same work" for a subscriber (default: the event id)."""
        return self.event_id

    def derive[E: Event](self, event_cls: type[E], discriminator: str = "", **fields: Any) -> E:
        """A follow-up event in the same chain, with an id fixed by this event and its type."""
        return event_cls(
            event_id=stable_id(self.event_id, event_type_of(event_cls), discriminator),
            correlation_id=self.correlation_id,
            causation_id=self.event_id,
            **fields,
        )

    @classmethod
    def start_chain(cls, chain_key: str | None = None, **fields: Any) -> Self:
        """The first event of a chain; with a key, its ids are deterministic (a DAG run, a file)."""
        if chain_key is None:
            return cls(**fields)
        event_id = stable_id(event_type_of(cls), chain_key)
        return cls(event_id=event_id, correlation_id=event_id, **fields)


class DataLanded(Event):
    """A file arrived in the landing bucket (from MinIO's notification, the CLI or a sweep)."""

    event_type: Literal["DataLanded"] = "DataLanded"
    object: ObjectRef
    kind: DataKind
    content_type: str | None = None
    source: Literal["notification", "sweep", "cli", "embedded", "ingest"] = "notification"

    @property
    def idempotency_key(self) -> str:
        return self.object.versioned_uri


class SweepRequested(Event):
    """Re-emit DataLanded for every landing object with no processed record (lost notifications)."""

    event_type: Literal["SweepRequested"] = "SweepRequested"
    prefix: str = ""


class QualityRequested(Event):
    """Run the data-quality/PSI check on the latest landed batch (or the one named)."""

    event_type: Literal["QualityRequested"] = "QualityRequested"
    object: ObjectRef | None = None


class DataValidated(Event):
    """A landed file passed validation; warnings say what was odd but tolerated."""

    event_type: Literal["DataValidated"] = "DataValidated"
    object: ObjectRef
    kind: DataKind
    quality_run_id: str
    rows: int = Field(ge=0)
    has_target: bool = False
    warnings: tuple[str, ...] = ()
    max_psi: float | None = None


class DataRejected(Event):
    """A landed file failed validation; the original stays, a quarantine copy holds the reason."""

    event_type: Literal["DataRejected"] = "DataRejected"
    object: ObjectRef
    kind: DataKind | None = None
    quality_run_id: str
    reason: str = Field(min_length=1)
    details: dict[str, Any] = Field(default_factory=dict)
    quarantine: ObjectRef | None = None


class QualityReportRequested(Event):
    """Render the human-facing evidence of a decided quality run (HTML/PDF report, MLflow run).

    Sent beside the verdict, so the verdict never waits for plots; the run's inputs to the report
    wait in the reports bucket (`input`), and the report's location is recorded on the run.
    """

    event_type: Literal["QualityReportRequested"] = "QualityReportRequested"
    quality_run_id: str
    object: ObjectRef
    input: ObjectRef

    @property
    def idempotency_key(self) -> str:
        return f"quality-report:{self.quality_run_id}"


class PsiBreached(Event):
    """At least one feature's PSI reached PSI_THRESHOLD against the baseline profile."""

    event_type: Literal["PsiBreached"] = "PsiBreached"
    object: ObjectRef
    quality_run_id: str
    features: dict[str, float]
    max_psi: float = Field(ge=0)
    threshold: float = Field(gt=0)
    # How many features were compared (None from producers before it was added).
    features_compared: int | None = Field(default=None, ge=0)


class BatchScored(Event):
    """A batch was scored: predictions written and a scoring run recorded."""

    event_type: Literal["BatchScored"] = "BatchScored"
    input: ObjectRef
    predictions: ObjectRef
    scoring_run_id: str
    model_name: str
    model_version: str
    rows: int = Field(ge=0)
    has_target: bool = False
    roc_auc: float | None = None
    pr_auc: float | None = None


class RetrainRequested(Event):
    """Train a challenger (and maybe promote it)."""

    event_type: Literal["RetrainRequested"] = "RetrainRequested"
    reason: RetrainReason
    detail: str = ""
    data: ObjectRef | None = None


class PerformanceDegraded(Event):
    """The champion's live performance fell below a configured threshold (measured on labels,
    or `estimated` from a batch's probabilities before its labels land)."""

    event_type: Literal["PerformanceDegraded"] = "PerformanceDegraded"
    model_name: str
    model_version: str
    metric: str
    value: float
    threshold: float
    # True: estimated from the batch's calibrated probabilities before any label landed.
    estimated: bool = False


class ModelPromoted(Event):
    """A challenger became the champion (registry alias `champion`)."""

    event_type: Literal["ModelPromoted"] = "ModelPromoted"
    model_name: str
    model_version: str
    model_uri: str
    challenger_pr_auc: float
    champion_pr_auc: float | None = None
    previous_version: str | None = None
    training_data: ObjectRef | None = None  # the table it was fitted on (for the baseline)


class ModelRejected(Event):
    """A challenger did not beat the champion by the required margin; the champion stays."""

    event_type: Literal["ModelRejected"] = "ModelRejected"
    model_name: str
    model_version: str
    challenger_pr_auc: float
    champion_pr_auc: float | None
    reason: str


class ScoreChunkRequested(Event):
    """Score rows [row_start, row_stop) of a large batch; scorer replicas share the chunks."""

    event_type: Literal["ScoreChunkRequested"] = "ScoreChunkRequested"
    input: ObjectRef
    scoring_run_id: str
    model_name: str
    model_version: str
    chunk_index: int = Field(ge=0)
    chunk_count: int = Field(ge=1)
    row_start: int = Field(ge=0)
    row_stop: int = Field(ge=0)


class TrialsRequested(Event):
    """Help a running training's hyperparameter search: pull trials from its Optuna study.

    The trainer that holds the training lock publishes these; any trainer replica that takes one
    runs trials of the study until its budget is spent. The study (in the Optuna storage) counts
    the budget, so a copy delivered twice, or late, runs nothing extra.
    """

    event_type: Literal["TrialsRequested"] = "TrialsRequested"
    study_name: str = Field(min_length=1, max_length=200)
    run_id: str = Field(min_length=1)  # the training run (training_runs) the study belongs to
    training: ObjectRef  # the training rows the coordinator searches on (Parquet)
    target: str = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)  # columns that are no features
    n_trials: int = Field(ge=1)
    seed: int
    cv_max_rows: int = Field(ge=0)
    cv_folds: int = Field(ge=2)
    helper: int = Field(ge=1)  # which helper task of the training (seeds its sampler)


class MonitoringRequested(Event):
    """Build the drift/performance report over recent batches (weekly, or on demand)."""

    event_type: Literal["MonitoringRequested"] = "MonitoringRequested"
    since: AwareDatetime | None = None


class IngestRequested(Event):
    """Pull one configured source (a warehouse query or an HTTP API) into the landing bucket.

    Carries the source's name in the sources file, never its URL or credentials; the snapshot
    it lands is fixed by the source, its query and the logical date.
    """

    event_type: Literal["IngestRequested"] = "IngestRequested"
    source: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    logical_date: date


class IntegrityFailed(Event):
    """An artifact failed its integrity check (a model whose files changed after registration):
    the message that needed it was dead-lettered; someone must look."""

    event_type: Literal["IntegrityFailed"] = "IntegrityFailed"
    task_name: str
    reason: str = Field(min_length=1)


AnyEvent = Annotated[
    DataLanded
    | SweepRequested
    | QualityRequested
    | DataValidated
    | DataRejected
    | QualityReportRequested
    | PsiBreached
    | BatchScored
    | RetrainRequested
    | PerformanceDegraded
    | ModelPromoted
    | ModelRejected
    | ScoreChunkRequested
    | TrialsRequested
    | MonitoringRequested
    | IngestRequested
    | IntegrityFailed,
    Field(discriminator="event_type"),
]

EVENT_TYPES: dict[str, type[Event]] = {
    event_type_of(cls): cls
    for cls in (
        DataLanded,
        SweepRequested,
        QualityRequested,
        DataValidated,
        DataRejected,
        QualityReportRequested,
        PsiBreached,
        BatchScored,
        RetrainRequested,
        PerformanceDegraded,
        ModelPromoted,
        ModelRejected,
        ScoreChunkRequested,
        TrialsRequested,
        MonitoringRequested,
        IngestRequested,
        IntegrityFailed,
    )
}

_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)


def parse_event(payload: Any) -> Event:
    """Decode a wire payload (dict or JSON text). Raises pydantic.ValidationError when invalid."""
    if isinstance(payload, str | bytes):
        return _ADAPTER.validate_json(payload)
    return _ADAPTER.validate_python(payload)


def to_wire(event: Event) -> dict[str, Any]:
    """JSON-safe dict for the broker."""
    return event.model_dump(mode="json")
