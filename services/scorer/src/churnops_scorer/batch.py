"""Streaming a table through a ChunkScorer into local output files, with bounded memory.

Read a chunk, score it, append it to the Parquet (and optionally CSV) output, fold it into the
score summary and the retention list, drop it. Memory is one chunk plus fixed-size accumulators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import PROBABILITY, ChunkScorer
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


def target_codes(predictions: pd.DataFrame, target_column: str) -> np.ndarray | None:
    """0/1 per row, -1 where unlabelled; None when the batch has no target column."""
    if target_column not in predictions:
        return None
    return np.asarray(predictions[target_column].astype("Int64").fillna(-1), dtype=np.int64)


def score_stream(
    scorer: ChunkScorer,
    chunks: Iterable[tuple[int, pd.DataFrame]],
    outputs: BatchOutputs,
    retention: RetentionList,
    progress: Progress | None = None,
) -> BatchResult:
    started = time.perf_counter()
    info = scorer.info
    summary = ScoreSummary(high_threshold=info.risk_high)
    rows = 0
    with pq.ParquetWriter(outputs.predictions, scorer.schema, compression="zstd") as writer:
        for offset, frame in chunks:
            predictions = scorer.score(frame, row_offset=offset)
            writer.write_table(scorer.to_arrow(predictions))
            if outputs.csv is not None:
                predictions.to_csv(outputs.csv, mode="a", header=rows == 0, index=False)
            summary.add(
                predictions[PROBABILITY].to_numpy(), target_codes(predictions, info.target_column)
            )
            retention.add(frame, predictions)
            rows += len(predictions)
            if progress is not None:
                progress(rows)
    return BatchResult(rows, time.perf_counter() - started, summary, retention, outputs)
