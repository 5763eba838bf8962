"""A quality run for one stored object: check it, keep the evidence, decide the follow-ups.

Evidence on the verdict's path: a `quality_runs` row (+ `feature_psi` rows), the report's inputs
as JSON under `reports/quality/<file name>/<run_id>/` (`churnops_common.report_names`), and
for a rejected file a quarantine copy. What is only for people (the HTML/PDF report, the
Evidently page and the MLflow run) is rendered by a follow-up task on the quality queue
(`QualityReportRequested`, see evidence.py), so the scorer never waits for plots.

Quarantine (documented choice): the reports bucket, `quarantine/<run_id>/<file name>` with
`quarantine/<run_id>/reason.json` beside it. The original stays where it landed; the copy is
outside the landing bucket, so it never triggers a notification or a sweep.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

from churnops_common.events import (
    DataKind,
    DataRejected,
    DataValidated,
    Event,
    ObjectRef,
    PsiBreached,
    QualityReportRequested,
)
from churnops_common.report_names import quality_folder
from churnops_common.runtime import Runtime
from churnops_quality.baseline import Baseline, load_baseline
from churnops_quality.checks import CheckResult, check_file, rejected
from churnops_quality.data_profile import DataProfile, from_baseline, from_psi
from churnops_quality.reading import FileProblem, check_size
from churnops_quality.records import RunRecord, write_run
from churnops_quality.refresh import save_first_baseline
from churnops_quality.report import ReportInput
from churnops_quality.validation import Issue, Verdict

log = logging.getLogger(__name__)
REASON_FILE = "reason.json"
# A key segment longer than this is rejected: names derived from it must still fit the usual
# 255-byte file-name limit of the disks under MinIO or the local store.
MAX_SEGMENT_BYTES = 200


@dataclass(frozen=True)
class QualityOutcome:
    run_id: str
    object: ObjectRef
    kind: DataKind
    result: CheckResult
    report_input: ObjectRef | None  # None: nothing to report (a file the stores refused)
    quarantine: ObjectRef | None
    threshold: float
    baseline_version: int | None = None
    # A re-check on request of an object that already had its run: recorded, never counted
    # as newly landed (labelled) data.
    recheck: bool = False

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    @property
    def psi(self) -> dict[str, float]:
        return self.result.psi.by_feature if self.result.psi else {}

    @property
    def breached(self) -> dict[str, float]:
        return self.result.psi.breached(self.threshold) if self.result.psi else {}


def run_quality(
    runtime: Runtime,
    ref: ObjectRef,
    kind: DataKind,
    run_id: str,
    correlation_id: str,
    *,
    recheck: bool = False,
) -> QualityOutcome:
    runtime = runtime.under_contract()  # the model's data contract names ids and targets
    settings = runtime.settings
    store = runtime.store
    baseline = load_baseline(store, settings, runtime.cache)
    info = store.stat(ref.bucket, ref.key)
    if info is None:
        result = _missing(ref)
    else:
        too_long = _long_segment(ref.key)
        if too_long is not None:
            result = _not_checked(
                "key_too_long",
                f"{ref.uri}: a key segment of {too_long} bytes (at most {MAX_SEGMENT_BYTES}):"
                " the names derived from it (outputs, quarantine copy) may not fit a file"
                " system; rename the file",
            )
        elif ref.etag and info.etag != ref.etag:
            # The landed version is gone: its record must not vouch for other content (the
            # new version is checked on its own event); so it is rejected, not checked.
            log.warning(
                "%s changed since it landed (etag %s, now %s)", ref.uri, ref.etag, info.etag
            )
            result = _changed(ref, info.etag)
        else:
            result = _check_object(runtime, ref, info.size, kind, baseline)
    if result.new_baseline is not None:
        baseline = save_first_baseline(runtime, *result.new_baseline)
    quarantine = (
        _quarantine(runtime, ref, run_id, kind, result)
        if info is not None
        and result.verdict.status == "rejected"
        and (not ref.etag or info.etag == ref.etag)
        else None
    )
    report_input = _report_input(runtime, ref, run_id, kind, result, baseline)
    outcome = QualityOutcome(
        run_id,
        ref,
        kind,
        result,
        report_input,
        quarantine,
        settings.psi_threshold,
        baseline_version=baseline.version if baseline else None,
        recheck=recheck,
    )
    _record(runtime, outcome, correlation_id)
    _log_outcome(outcome)
    return outcome


def _long_segment(key: str) -> int | None:
    longest = max(len(part.encode()) for part in key.split("/"))
    return longest if longest > MAX_SEGMENT_BYTES else None


def record_unstorable(
    runtime: Runtime, ref: ObjectRef, kind: DataKind, run_id: str, correlation_id: str, error: str
) -> QualityOutcome:
    """A landed file whose check or records the stores refuse for good: recorded as a
    rejection with the reason, so the sweep stops announcing it again."""
    result = _not_checked("unstorable", f"{ref.uri} cannot be checked or recorded: {error}")
    outcome = QualityOutcome(run_id, ref, kind, result, None, None, runtime.settings.psi_threshold)
    _record(runtime, outcome, correlation_id)
    _log_outcome(outcome)
    return outcome


def _check_object(
    runtime: Runtime, ref: ObjectRef, size: int, kind: DataKind, baseline: Baseline | None
) -> CheckResult:
    settings = runtime.settings
    try:  # a huge file is rejected from its size, before it is downloaded
        check_size(size, int(settings.quality_max_file_mb * 2**20))
    except FileProblem as problem:
        return rejected(problem)
    with runtime.store.local_path(ref.bucket, ref.key, etag=ref.etag or None) as path:
        return check_file(path, kind, baseline, settings, source=ref.versioned_uri)


def _missing(ref: ObjectRef) -> CheckResult:
    return _not_checked("object_missing", f"{ref.uri} no longer exists in the object store")


def _changed(ref: ObjectRef, now: str) -> CheckResult:
    return _not_checked(
        "object_changed",
        f"{ref.uri} changed since it landed (etag {ref.etag}, now {now}): the landed version is"
        " gone; the new content is checked on its own notification",
    )


def _not_checked(code: str, reason: str) -> CheckResult:
    problem = FileProblem(code, reason)
    issue = Issue(code=problem.code, severity="error", message=problem.reason)
    return CheckResult(Verdict(status="rejected", rows=0, has_target=False, issues=[issue]))


def _quarantine(
    runtime: Runtime, ref: ObjectRef, run_id: str, kind: DataKind, result: CheckResult
) -> ObjectRef:
    bucket = runtime.settings.minio_reports_bucket
    prefix = f"quarantine/{run_id}"
    name = PurePosixPath(ref.key).name
    if name == REASON_FILE:  # the reason's name is taken: the file must not overwrite it
        name = f"landed-{name}"
    copy = runtime.store.copy(
        ref.bucket, ref.key, bucket, f"{prefix}/{name}", etag=ref.etag or None
    )
    reason = {
        "object": ref.uri,
        "etag": ref.etag,
        "kind": kind,
        "run_id": run_id,
        "reason": result.verdict.reason,
        "issues": [i.model_dump() for i in result.verdict.issues],
        "quarantined_at": datetime.now(UTC).isoformat(),
    }
    runtime.store.put_bytes(
        bucket, f"{prefix}/{REASON_FILE}", json.dumps(reason, indent=1).encode(), "application/json"
    )
    return ObjectRef(bucket=copy.bucket, key=copy.key, etag=copy.etag, size=copy.size)


REPORT_INPUT = "report-input.json"


def _report_input(
    runtime: Runtime,
    ref: ObjectRef,
    run_id: str,
    kind: DataKind,
    result: CheckResult,
    baseline: Baseline | None,
) -> ObjectRef:
    """What the report will show, kept beside it: the follow-up task renders it from this."""
    data = ReportInput(
        run_id=run_id,
        title=ref.uri,
        kind=kind,
        verdict=result.verdict,
        psi=result.psi,
        threshold=runtime.settings.psi_threshold,
        baseline_version=baseline.version if baseline else None,
        profile=_profile(result),
    )
    info = runtime.store.put_bytes(
        runtime.settings.minio_reports_bucket,
        f"{quality_folder(ref.key, run_id)}/{REPORT_INPUT}",
        data.model_dump_json().encode(),
        "application/json",
    )
    return ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)


def _profile(result: CheckResult) -> DataProfile | None:
    """What an accepted file holds: a first training set is its own baseline's profile."""
    verdict = result.verdict
    if verdict.status != "accepted":
        return None
    if result.new_baseline is not None:
        return from_baseline(result.new_baseline[0].profile, verdict.target_rate)
    if result.psi is not None:
        return from_psi(result.psi, verdict.target_rate)
    return None


def _record(runtime: Runtime, outcome: QualityOutcome, correlation_id: str) -> None:
    verdict = outcome.verdict
    details: dict[str, object] = {
        "issues": [i.model_dump() for i in verdict.issues],
        "baseline_version": outcome.baseline_version,
        # The threshold the verdict was decided at: reports restate it, never re-decide.
        "psi_threshold": outcome.threshold,
    }
    if outcome.quarantine is not None:
        details["quarantine"] = outcome.quarantine.uri
    if outcome.recheck:
        # The trainer counts accepted rows with has_target as new labelled data: a re-check
        # of a file already counted keeps its real answer here and False in the column.
        details["recheck"] = True
        details["file_has_target"] = verdict.has_target
    write_run(
        runtime.engine,
        RunRecord(
            run_id=outcome.run_id,
            object=outcome.object,
            kind=outcome.kind,
            status=verdict.status,
            reason=verdict.reason or None,
            rows=verdict.rows,
            has_target=verdict.has_target and not outcome.recheck,
            psi=outcome.psi,
            threshold=outcome.threshold,
            warnings=list(verdict.warnings),
            details=details,
            report_uri=None,  # set by the report task; a re-run of the check keeps it
            correlation_id=correlation_id,
        ),
    )


def _log_outcome(outcome: QualityOutcome) -> None:
    verdict = outcome.verdict
    if verdict.status == "rejected":
        log.warning("rejected %s (%s): %s", outcome.object.uri, outcome.kind, verdict.reason)
    else:
        log.info(
            "accepted %s (%s): %d rows, %d warning(s), max PSI %s",
            outcome.object.uri,
            outcome.kind,
            verdict.rows,
            len(verdict.warnings),
            f"{max(outcome.psi.values()):.4f}" if outcome.psi else "n/a",
        )


def followups(source: Event, outcome: QualityOutcome, *, announce: bool = True) -> list[Event]:
    """DataValidated | DataRejected, plus PsiBreached for a breaching batch of new data, then
    QualityReportRequested (the report is rendered after the verdict went out).

    Training sets do not raise PsiBreached: the trainer already trains on their DataValidated.
    `announce=False` (a re-check on request) leaves out DataValidated, which would re-trigger
    scoring of data that was already announced; the handler runs such a re-check only against
    a baseline the object was not checked against yet, so its PsiBreached is news.
    """
    verdict = outcome.verdict
    events: list[Event] = []
    if verdict.status == "rejected":
        events.append(
            source.derive(
                DataRejected,
                outcome.run_id,
                object=outcome.object,
                kind=outcome.kind,
                quality_run_id=outcome.run_id,
                reason=verdict.reason or "rejected",
                details={"issues": [i.model_dump() for i in verdict.issues]},
                quarantine=outcome.quarantine,
            )
        )
        return [*events, *_report_request(source, outcome)]
    max_psi = max(outcome.psi.values()) if outcome.psi else None
    if announce:
        events.append(
            source.derive(
                DataValidated,
                outcome.run_id,
                object=outcome.object,
                kind=outcome.kind,
                quality_run_id=outcome.run_id,
                rows=verdict.rows,
                has_target=verdict.has_target,
                warnings=verdict.warnings,
                max_psi=max_psi,
            )
        )
    if outcome.kind == "new_data" and outcome.breached and max_psi is not None:
        events.append(
            source.derive(
                PsiBreached,
                outcome.run_id,
                object=outcome.object,
                quality_run_id=outcome.run_id,
                features=outcome.breached,
                max_psi=max_psi,
                threshold=outcome.threshold,
                features_compared=len(outcome.psi),
            )
        )
    return [*events, *_report_request(source, outcome)]


def _report_request(source: Event, outcome: QualityOutcome) -> list[QualityReportRequested]:
    if outcome.report_input is None:
        return []
    return [
        source.derive(
            QualityReportRequested,
            outcome.run_id,
            quality_run_id=outcome.run_id,
            object=outcome.object,
            input=outcome.report_input,
        )
    ]
