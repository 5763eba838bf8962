"""Scoring one chunk of rows: probability, risk band, top reasons, lineage columns.

The output columns are the predictions-file contract (see the project context): the monitor and
the trainer read them. Every chunk of a batch has the same Arrow schema, so chunks stream into
one Parquet file and split batches assemble row for row like unsplit ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.reasons import TOP_REASONS, Attributor, ReasonMethod, top_reasons

PROBABILITY = "churn_probability"
RISK_BAND = "risk_band"
REASONS = [f"reason_{i}" for i in range(1, TOP_REASONS + 1)]
REASON_VALUES = [f"{r}_contribution" for r in REASONS]


@dataclass(frozen=True)
class BatchInfo:
    """What every output row of a batch carries besides its scores."""

    model_name: str
    model_version: str
    input_object: str  # s3://bucket/key (or the local path for the CLI)
    input_etag: str
    id_column: str
    target_column: str
    has_target: bool
    risk_medium: float = 0.3
    risk_high: float = 0.6


def output_schema(info: BatchInfo) -> pa.Schema:
    fields = [
        pa.field(info.id_column, pa.string()),
        pa.field(PROBABILITY, pa.float64()),
        pa.field(RISK_BAND, pa.string()),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        *[pa.field(name, pa.string()) for name in REASONS],
        *[pa.field(name, pa.float64()) for name in REASON_VALUES],
        pa.field("input_object", pa.string()),
        pa.field("input_etag", pa.string()),
    ]
    if info.has_target:
        fields.append(pa.field(info.target_column, pa.int64()))
    return pa.schema(fields)


def risk_bands(probability: np.ndarray, medium: float, high: float) -> np.ndarray:
    bands = np.full(probability.shape, "low", dtype=object)
    bands[probability >= medium] = "medium"
    bands[probability >= high] = "high"
    return bands


def target_as_binary(series: pd.Series) -> pd.Series:
    """0/1 (nullable) from numbers or the usual yes/no spellings; anything else is missing."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return pd.to_numeric(series, errors="coerce").astype("Int64")
    text = series.astype("string").str.strip().str.lower()
    mapping = {
        "1": 1,
        "yes": 1,
        "true": 1,
        "y": 1,
        "churned": 1,
        "0": 0,
        "no": 0,
        "false": 0,
        "n": 0,
    }
    return text.map(mapping).astype("Int64")


def ids_of(frame: pd.DataFrame, id_column: str, row_offset: int) -> pd.Series:
    """The id column as text; a file without one gets its 0-based row numbers."""
    if id_column in frame:
        return frame[id_column].astype("string")
    return pd.Series(np.arange(row_offset, row_offset + len(frame)).astype(str), dtype="string")


class ChunkScorer:
    """Turns input chunks into prediction tables for one model and one batch."""

    def __init__(self, pipeline: ChurnPipeline, info: BatchInfo, method: ReasonMethod) -> None:
        self.pipeline = pipeline
        self.info = info
        self.schema = output_schema(info)
        self.attributor = Attributor(pipeline, method)

    def score(self, frame: pd.DataFrame, row_offset: int = 0) -> pd.DataFrame:
        info = self.info
        contributions, probability = self.attributor.contributions(frame)
        names, values = top_reasons(contributions, self.pipeline.input_columns)
        n = len(frame)
        out: dict[str, object] = {
            info.id_column: ids_of(frame, info.id_column, row_offset).to_numpy(dtype=object),
            PROBABILITY: probability,
            RISK_BAND: risk_bands(probability, info.risk_medium, info.risk_high),
            "model_name": np.full(n, info.model_name, dtype=object),
            "model_version": np.full(n, info.model_version, dtype=object),
        }
        out.update(zip(REASONS, names, strict=True))
        out.update(zip(REASON_VALUES, values, strict=True))
        out["input_object"] = np.full(n, info.input_object, dtype=object)
        out["input_etag"] = np.full(n, info.input_etag, dtype=object)
        if info.has_target:
            target = (
                frame[info.target_column]
                if info.target_column in frame
                else pd.Series(pd.NA, index=frame.index)
            )
            out[info.target_column] = target_as_binary(target).array  # no index: no alignment
        return pd.DataFrame(out)

    def to_arrow(self, predictions: pd.DataFrame) -> pa.Table:
        return pa.Table.from_pandas(predictions, schema=self.schema, preserve_index=False)
