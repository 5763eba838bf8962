"""The in-process compute of a batch: what the platform's overhead is measured against.

The quality check and the scoring of a local file, as the plain functions the workers call,
with the stack's baseline profile and champion model loaded once beforehand: no object-store
transfers, no events, no database. The quality report (HTML with plots, and PDF), which the
quality worker renders per file in a follow-up task after the verdict is out, is timed apart: it
is no longer on the way from upload to predictions.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.system.harness import LocalStack


@dataclass(frozen=True)
class Compute:
    check_s: float  # validation and PSI
    score_s: float  # scoring, reasons, predictions and retention files
    report_s: float  # the quality report: HTML with plots, and PDF

    @property
    def total_s(self) -> float:
        """The compute proper: what any design has to spend on the batch."""
        return self.check_s + self.score_s


def in_process_seconds(stack: LocalStack, paths: list[Path]) -> list[Compute]:
    from churnops_common.runtime import Runtime
    from churnops_quality.baseline import load_baseline
    from churnops_scorer.models import champion

    settings = stack.settings
    runtime = Runtime(settings=settings, store=stack.store, engine=stack.engine, bus=_NoBus())
    baseline = load_baseline(runtime.store, settings, runtime.cache)
    model = champion(runtime)
    return [_one(path, settings, baseline, model) for path in paths]


def _one(path: Path, settings: Any, baseline: Any, model: Any) -> Compute:
    from churnops_quality.checks import check_file

    started = time.perf_counter()
    result = check_file(path, "new_data", baseline, settings)
    assert result.verdict.status == "accepted", result.verdict.reason
    checked = time.perf_counter()
    _score(path, settings, model)
    scored = time.perf_counter()
    _report(path, settings, result, baseline)
    return Compute(checked - started, scored - checked, time.perf_counter() - scored)


def _score(path: Path, settings: Any, model: Any) -> None:
    from churnops_common.events import ObjectRef
    from churnops_common.tabular import read_chunks
    from churnops_scorer.batch import needed_columns, score_stream
    from churnops_scorer.score_batch import batch_info, local_outputs, new_retention
    from churnops_scorer.scoring import ChunkScorer

    ref = ObjectRef(bucket="local", key=path.name, etag="in-process")
    info = batch_info(settings, model, ref, False)
    scorer = ChunkScorer(model.pipeline, info, settings.scorer_reasons)
    retention = new_retention(settings)
    with tempfile.TemporaryDirectory(prefix="churnops-compute-") as tmp:
        chunks = read_chunks(
            path, settings.scorer_chunk_rows, columns=needed_columns(scorer, retention)
        )
        score_stream(scorer, chunks, local_outputs(Path(tmp), settings), retention)


def _report(path: Path, settings: Any, result: Any, baseline: Any) -> None:
    from churnops_quality.report import ReportInput, render_html, render_pdf

    data = ReportInput(
        run_id="in-process",
        title=path.name,
        kind="new_data",
        verdict=result.verdict,
        psi=result.psi,
        threshold=settings.psi_threshold,
        baseline_version=baseline.version if baseline else None,
    )
    html = render_html(data)
    if settings.quality_pdf_enabled:
        render_pdf(html)


class _NoBus:
    def publish(self, event: object) -> None:
        raise AssertionError(f"the compute measurement publishes nothing, got {event!r}")
