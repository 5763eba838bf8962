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

from churnops_common.contract import target_codes
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_scorer.reasons import TOP_REASONS, Attributor, ReasonMethod, top_reasons

PROBABILITY = "churn_probability"
RISK_BAND = "risk_band"
REASONS = [f"reason_{i}" for i in range(1, TOP_REASONS + 1)]
# How much each reason raises the model's churn log-odds (its additive contribution): the
# column's name says so, for whoever reads the file without this comment.
REASON_VALUES = [f"{r}_log_odds" for r in REASONS]


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
    reason_floor: float = 0.0  # log-odds a contribution must exceed to count as a reason


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


BANDS = pa.array(["low", "medium", "high"], pa.string())


def decoded(index: np.ndarray, strings: pa.Array) -> pa.Array:
    """`strings[index]` as a string array, built in Arrow (no Python object per row);
    a negative index is null."""
    mask = index < 0
    indices = pa.array(np.where(mask, 0, index).astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, strings).cast(pa.string())


def risk_bands(probability: np.ndarray, medium: float, high: float) -> pa.Array:
    codes = (probability >= medium).astype(np.int8) + (probability >= high).astype(np.int8)
    return decoded(codes, BANDS)


def repeated(value: str, n: int) -> pa.Array:
    """One string n times."""
    return decoded(np.zeros(n, dtype=np.int8), pa.array([value], pa.string()))


def probabilities(predictions: pa.Table | pa.RecordBatch) -> np.ndarray:
    return np.asarray(predictions.column(PROBABILITY).to_numpy(), dtype=np.float64)


def target_as_binary(series: pd.Series) -> pd.Series:
    """0/1 (nullable) with the platform's target vocabulary; anything else is missing here
    (quality has already rejected a batch whose target holds unknown values)."""
    codes, _ = target_codes(series)
    return pd.Series(codes, index=series.index).astype("Int64").mask(codes < 0)


def ids_of(chunk: pa.Table, id_column: str, row_offset: int) -> pa.Array:
    """The id column as text; a file without one gets its 0-based row numbers."""
    if id_column in chunk.column_names:
        return chunk.column(id_column).cast(pa.string()).combine_chunks()
    return pa.array(np.arange(row_offset, row_offset + chunk.num_rows)).cast(pa.string())


class ChunkScorer:
    """Turns input chunks into prediction tables for one model and one batch."""

    def __init__(self, pipeline: ChurnPipeline, info: BatchInfo, method: ReasonMethod) -> None:
        self.pipeline = pipeline
        self.info = info
        self.schema = output_schema(info)
        self.attributor = Attributor(pipeline, method)
        self.reason_names = pa.array(pipeline.input_columns, pa.string())

    def score(self, chunk: pa.Table, row_offset: int = 0) -> pa.Table:
        """The prediction rows (the output schema) for one input chunk, in its order."""
        info = self.info
        n = chunk.num_rows
        contributions, probability = self.attributor.contributions(chunk)
        index, values = top_reasons(contributions, floor=info.reason_floor)
        arrays: list[pa.Array] = [
            ids_of(chunk, info.id_column, row_offset),
            pa.array(probability, pa.float64()),
            risk_bands(probability, info.risk_medium, info.risk_high),
            repeated(info.model_name, n),
            repeated(info.model_version, n),
            *[decoded(index[:, i], self.reason_names) for i in range(TOP_REASONS)],
            *[pa.array(values[:, i], pa.float64()) for i in range(TOP_REASONS)],
            repeated(info.input_object, n),
            repeated(info.input_etag, n),
        ]
        if info.has_target:
            arrays.append(self._target(chunk))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _target(self, chunk: pa.Table) -> pa.Array:
        name = self.info.target_column
        if name not in chunk.column_names:
            return pa.nulls(chunk.num_rows, pa.int64())
        binary = target_as_binary(chunk.column(name).to_pandas())
        return pa.array(binary, pa.int64())
