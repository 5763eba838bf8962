"""Streaming a table through a ChunkScorer into local output files, with bounded memory.

Read a chunk, score it, append it to the Parquet (and optionally CSV) output, fold it into the
score summary and the retention list, drop it. Memory is one chunk plus fixed-size accumulators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import ChunkScorer, probabilities
from churnops_scorer.summary import ScoreSummary

Progress = Callable[[int], None]  # called with the rows scored so far


@dataclass
class BatchOutputs:
    """Local files written for one batch (or one part of a split batch)."""

    predictions: Path
    csv: Path | None = None


@dataclass
class BatchResult:
    rows: int
    seconds: float
    summary: ScoreSummary
    retention: RetentionList
    outputs: BatchOutputs


def target_codes(predictions: pa.Table | pa.RecordBatch, target_column: str) -> np.ndarray | None:
    """0/1 per row, -1 where unlabelled; None when the batch has no target column."""
    if target_column not in predictions.schema.names:
        return None
    column = predictions.column(target_column)
    return np.asarray(pc.fill_null(column, -1).to_numpy(), dtype=np.int64)


class PredictionWriter:
    """Appends prediction tables to the Parquet output and, when asked, its CSV copy."""

    def __init__(self, outputs: BatchOutputs, schema: pa.Schema) -> None:
        # Dictionary pages only where values repeat (bands, reasons, lineage), not for the id
        # (the first column): hashing a million unique ids for a dictionary that is then
        # dropped costs a third of the write.
        repeating = [f.name for f in list(schema)[1:] if pa.types.is_string(f.type)]
        self.parquet = pq.ParquetWriter(
            outputs.predictions, schema, compression="zstd", use_dictionary=repeating
        )
        self.csv = (
            pcsv.CSVWriter(
                outputs.csv, schema, write_options=pcsv.WriteOptions(quoting_style="needed")
            )
            if outputs.csv is not None
            else None
        )

    def write(self, predictions: pa.Table | pa.RecordBatch) -> None:
        if isinstance(predictions, pa.RecordBatch):
            predictions = pa.Table.from_batches([predictions])
        self.parquet.write_table(predictions)
        if self.csv is not None:
            self.csv.write_table(predictions)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.parquet.close()
        if self.csv is not None:
            self.csv.close()


def needed_columns(scorer: ChunkScorer, retention: RetentionList) -> set[str]:
    """The input columns scoring reads: id, the model's inputs, target, retention value."""
    info = scorer.info
    value = [retention.value_column] if retention.value_column else []
    return {info.id_column, info.target_column, *scorer.pipeline.input_columns, *value}


def score_stream(
    scorer: ChunkScorer,
    chunks: Iterable[tuple[int, pa.Table]],
    outputs: BatchOutputs,
    retention: RetentionList,
    progress: Progress | None = None,
) -> BatchResult:
    started = time.perf_counter()
    info = scorer.info
    summary = ScoreSummary(high_threshold=info.risk_high)
    rows = 0
    with PredictionWriter(outputs, scorer.schema) as writer:
        for offset, chunk in chunks:
            predictions = scorer.score(chunk, row_offset=offset)
            writer.write(predictions)
            summary.add(probabilities(predictions), target_codes(predictions, info.target_column))
            retention.add(chunk, predictions)
            rows += predictions.num_rows
            if progress is not None:
                progress(rows)
    return BatchResult(rows, time.perf_counter() - started, summary, retention, outputs)
