"""retention.csv opens in spreadsheets: no cell may start like a formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import BatchScored, DataValidated, ObjectRef
from churnops_common.ml.pipeline import ChurnPipeline
from churnops_common.synthetic import generate

from .conftest import ID, TARGET, register_champion

HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_no_retention_cell_starts_like_a_formula(
    platform: EmbeddedPlatform, pipeline: ChurnPipeline, tmp_path: Path
) -> None:
    register_champion(platform.settings, pipeline, 0.5)
    frame = generate(300, seed=8).drop(columns=[TARGET])
    frame[ID] = [f"{HOSTILE[i % len(HOSTILE)]}{i}" for i in range(len(frame))]
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    info = platform.runtime.store.put_file("landing", "new_data/hostile.csv", path)
    ref = ObjectRef(bucket="landing", key=info.key, etag=info.etag, size=info.size)
    platform.publish(
        DataValidated.start_chain(
            ref.versioned_uri, object=ref, kind="new_data", quality_run_id="q", rows=300
        )
    )
    platform.run()

    (scored,) = [e for e in platform.events_of("BatchScored") if isinstance(e, BatchScored)]
    key = scored.predictions.key.replace("predictions.parquet", "retention.csv")
    text = platform.runtime.store.get_bytes(scored.predictions.bucket, key).decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == platform.settings.retention_top_k + 1
    cells = [cell for row in rows for cell in row if not _number(cell)]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    ids = pd.read_csv(io.StringIO(text), dtype=str)[ID]
    quoted = ids[ids.str.startswith("'")]
    # The ids are kept, as text, behind a quote (a leading carriage return may be read as a
    # line break upstream, so not every start survives to the list).
    assert {"=", "+", "-", "@", "\t"} <= set(quoted.str[1])
    assert all(any(i[1:].startswith(h) for h in HOSTILE) for i in quoted)


def _number(cell: str) -> bool:
    """A plain number (a negative expected profit starts with '-' and is no formula)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True
