"""The data contract: what a model's data looks like, fixed when its training set is accepted.

A contract names the target column and its positive value, the id column, and every other
column with its role, type and categories. Quality infers it from the first accepted training
set of a model name and stores it with the baseline (`quality/baseline/<model>/vNNNN/
schema.json`); the trainer copies it into every registered version. From then on every stage
and command reads ids, targets and features through it: the settings' `TARGET_COLUMN` and
`ID_COLUMN` only seed the first training of a model name.

Target vocabulary (one for every stage): a binary outcome may be written as

    positive: 1, 1.0, true, t, yes, y, churn, churned, exited, left, lost, cancelled, positive
    negative: 0, 0.0, false, f, no, n, stayed, retained, active, remained, kept, negative

in any case and with surrounding blanks. Anything else is an error that names the column, the
number of rows and examples: a label is never silently read as missing.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from churnops_common.settings import Settings
    from churnops_common.storage import ObjectStore

Role = Literal[
    "id", "target", "numeric", "categorical", "datetime", "constant", "text", "row_number"
]
# Roles a model may learn from (`Schema.features`); a column of any other role is never a
# feature: the id and the target; dates; free text (more distinct values than a category
# has); a row number (distinct whole numbers counting the file's rows, such as `RowNumber` or
# pandas' `Unnamed: 0`: a fact of the file, not of the customer).
FEATURE_ROLES: tuple[Role, ...] = ("numeric", "categorical", "constant")

SCHEMA_FORMAT = 1
POSITIVE_WORDS = frozenset(
    {"1", "1.0", "true", "t", "yes", "y", "churn", "churned", "exited", "left", "lost"}
    | {"cancelled", "canceled", "positive"}
)
NEGATIVE_WORDS = frozenset(
    {"0", "0.0", "false", "f", "no", "n", "stayed", "retained", "active", "remained", "kept"}
    | {"negative"}
)
MAX_EXAMPLES = 5
BASELINE_ROOT = "quality/baseline"
_NAME_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class TargetError(ValueError):
    """A target column that is missing, empty, unknown or one-valued; the message says which."""


class ColumnSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    dtype: str
    stored_as_text: bool = False  # numeric values written as text (with blanks)
    categories: list[str] = Field(default_factory=list)  # categorical / constant / target
    minimum: float | None = None
    maximum: float | None = None
    null_rate: float = 0.0
    distinct: int = 0


class Schema(BaseModel):
    """A model's data contract: the expected shape of every file of its data."""

    model_config = ConfigDict(frozen=True)

    format: int = SCHEMA_FORMAT
    id_column: str | None
    target_column: str | None
    columns: list[ColumnSpec]
    rows: int
    source: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # The spelling of the positive outcome in the training set (e.g. "Yes"), for people.
    positive_label: str | None = None

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[ColumnSpec]:
        """Columns a model learns and PSI compares (not id, target, dates, free text or row
        numbers)."""
        return [c for c in self.columns if c.role in FEATURE_ROLES]

    @property
    def not_features(self) -> list[ColumnSpec]:
        """Columns the trainer leaves out besides the id and the target (see FEATURE_ROLES)."""
        return [c for c in self.columns if c.role not in (*FEATURE_ROLES, "id", "target")]

    @property
    def fingerprint(self) -> str:
        """What makes two contracts the same: target, id and each column's name and role.

        Ranges, null rates and categories are facts of one sample, not of the contract: a
        refreshed baseline of the same data keeps its fingerprint.
        """
        identity = {
            "target": self.target_column,
            "id": self.id_column,
            "columns": sorted((c.name, c.role) for c in self.columns if c.role != "constant"),
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return f"c-{digest[:12]}"


Contract = Schema


# -- the target vocabulary ----------------------------------------------------------------------
def target_word(value: object) -> str:
    """The vocabulary's key for one value: lower-cased, stripped text (1.0 -> "1.0")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def target_codes(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(1/0/-1 per row: positive, negative, missing; the unknown non-blank values per row)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    words = [target_word(v) for v in uniques]
    table = np.array(
        [1 if w in POSITIVE_WORDS else 0 if w in NEGATIVE_WORDS else -2 for w in words] + [-1],
        dtype=np.int64,
    )
    blank = np.array([w == "" for w in words] + [True])
    table[blank] = -1
    per_row = table[codes]
    unknown = pd.Series(per_row == -2, index=series.index)
    return np.where(per_row == -2, -1, per_row), unknown


def unknown_target_message(column: str, series: pd.Series, unknown: pd.Series) -> str:
    count = int(unknown.sum())
    examples = sorted({str(v) for v in series[unknown].unique()})[:MAX_EXAMPLES]
    return (
        f"target column {column!r}: {count} row(s) hold values outside the target vocabulary"
        f" (e.g. {', '.join(repr(e) for e in examples)}); use 0/1, true/false, yes/no or"
        " churned/stayed"
    )


def binary_target(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column as 0/1 integers; a missing, unknown or one-valued target raises TargetError."""
    import numpy as np
    import pandas as pd

    if column not in frame.columns:
        raise TargetError(f"target column {column!r} not found; {columns_hint(frame.columns)}")
    series = frame[column]
    codes, unknown = target_codes(series)
    if unknown.any():
        raise TargetError(unknown_target_message(column, series, unknown))
    missing = int((codes < 0).sum())
    if missing:
        raise TargetError(
            f"target column {column!r} has {missing} missing value(s); drop those rows or fill them"
        )
    if len(np.unique(codes)) < 2:
        raise TargetError(f"target column {column!r} has only one class ({int(codes[0])})")
    return pd.Series(codes, index=frame.index, name=column)


def positive_label(series: pd.Series) -> str | None:
    """The training set's own spelling of the positive outcome (the most common one)."""
    codes, _ = target_codes(series)
    positives = series[codes == 1]
    if positives.empty:
        return None
    return str(positives.astype("string").str.strip().value_counts().index[0])


# -- names and hints -----------------------------------------------------------------------------
_EVERY_COLUMN = False  # `churnops -v`: hints list every column, however many


def list_every_column() -> None:
    """From now on in this process, hints name every column (asked for with `churnops -v`)."""
    global _EVERY_COLUMN
    _EVERY_COLUMN = True


def columns_hint(columns: object, wanted: str | None = None, limit: int = 40) -> str:
    """'did you mean ...' for a mistyped column name, then the columns (all, up to `limit`,
    unless every column was asked for)."""
    import difflib

    names = [str(c) for c in columns]  # type: ignore[attr-defined]
    parts = []
    if wanted:
        folded = {n.lower(): n for n in names}
        close = difflib.get_close_matches(wanted.lower(), list(folded), n=3, cutoff=0.6)
        if close:
            parts.append("did you mean " + " or ".join(repr(folded[c]) for c in close) + "?")
    if _EVERY_COLUMN:
        limit = len(names)
    shown = ", ".join(names[:limit])
    more = f" (+{len(names) - limit} more: `churnops -v` lists all)" if len(names) > limit else ""
    parts.append(f"columns are: {shown}{more}")
    return "; ".join(parts)


# -- where a model name's contract lives ---------------------------------------------------------
def baseline_prefix(model_name: str) -> str:
    """Each model name has its own baselines (and so its own contract)."""
    safe = _NAME_SAFE.sub("_", model_name).strip("._") or "model"
    return f"{BASELINE_ROOT}/{safe}"


def pointer_key(model_name: str) -> str:
    return f"{baseline_prefix(model_name)}/current.json"


def load_contract(store: ObjectStore, settings: Settings) -> Schema | None:
    """The contract of the settings' model name (its current baseline's schema), or None."""
    bucket = settings.minio_models_bucket
    pointer = pointer_key(settings.mlflow_model_name)
    if not store.exists(bucket, pointer):
        return None
    version = int(json.loads(store.get_bytes(bucket, pointer))["version"])
    key = f"{baseline_prefix(settings.mlflow_model_name)}/v{version:04d}/schema.json"
    return Schema.model_validate_json(store.get_bytes(bucket, key))


def apply_contract(settings: Settings, contract: Schema | None) -> Settings:
    """The settings with the contract's target and id columns (unchanged without a contract)."""
    if contract is None:
        return settings
    update: dict[str, str] = {}
    if contract.target_column:
        update["target_column"] = contract.target_column
    if contract.id_column:
        update["id_column"] = contract.id_column
    return settings.model_copy(update=update) if update else settings
