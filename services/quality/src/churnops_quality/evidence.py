"""The human-facing evidence of a decided quality run, rendered off the verdict's path.

The quality check publishes its verdict as soon as validation and PSI are decided, and asks for
this with `QualityReportRequested`: the HTML (+PDF) report, and for a batch with a PSI its
Evidently drift page (same verdict), in the folder named after the file where the check stored
the report's inputs as JSON (`reports/quality/<file name>/<run_id>/`), and the MLflow run
`data_quality_psi`.
The ledger runs it once per run; a retry after a crash overwrites the same objects, finds the
same MLflow run, and records the same location on the run.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

from churnops_common.errors import PermanentError
from churnops_common.events import QualityReportRequested
from churnops_common.runtime import Runtime
from churnops_quality.evidently_page import PAGE, render_page
from churnops_quality.records import set_report_uri
from churnops_quality.report import ReportInput, render_html, render_pdf
from churnops_quality.tracking import log_psi_run

log = logging.getLogger(__name__)


def render_report(runtime: Runtime, request: QualityReportRequested) -> str | None:
    """Render, store and record the run's report; returns its location (None: not rendered)."""
    settings = runtime.settings
    stored = request.input
    if not runtime.store.exists(stored.bucket, stored.key):
        raise PermanentError(f"the report inputs {stored.uri} are gone")
    data = ReportInput.model_validate_json(runtime.store.get_bytes(stored.bucket, stored.key))
    psi = data.psi.by_feature if data.psi else {}
    log_psi_run(settings, data.run_id, request.object.uri, data.kind, psi, data.verdict.status)
    bucket = settings.minio_reports_bucket
    folder = str(PurePosixPath(stored.key).parent)
    evidently = _evidently_page(runtime, data, request, f"{folder}/{PAGE}")
    try:
        html = render_html(data, PAGE if evidently else None)
    except Exception as exc:  # a plotting failure loses the pictures, never the verdict
        log.warning("report for %s not rendered: %s", data.run_id, exc)
        return None
    info = runtime.store.put_bytes(
        bucket, f"{folder}/report.html", html.encode(), "text/html; charset=utf-8"
    )
    pdf = render_pdf(html) if settings.quality_pdf_enabled else None
    if pdf is not None:
        runtime.store.put_bytes(bucket, f"{folder}/report.pdf", pdf, "application/pdf")
    uri = str(info.uri)
    if not set_report_uri(runtime.engine, request.quality_run_id, uri):
        log.warning("report %s written, but quality run %s has no row", uri, data.run_id)
    return uri


def _evidently_page(
    runtime: Runtime, data: ReportInput, request: QualityReportRequested, key: str
) -> bool:
    """Store the batch's Evidently drift page; False when there is none (no PSI) or it failed."""
    if data.kind != "new_data" or data.verdict.status != "accepted":
        return False
    try:
        html = render_page(runtime, data, request.object)
    except Exception as exc:  # Evidently or a vanished file: the report stands without it
        log.warning("Evidently page for %s not rendered: %s", data.run_id, exc)
        return False
    if html is None:
        return False
    runtime.store.put_bytes(
        runtime.settings.minio_reports_bucket, key, html.encode(), "text/html; charset=utf-8"
    )
    return True
