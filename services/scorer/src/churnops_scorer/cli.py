"""CLI commands of the scorer service, added to `churnops` through an entry point.

`churnops score FILE --out OUT` is a door into the platform, not a side path: the file lands
(in embedded mode in `landing/new_data/`, in stack mode under `landing/cli/`, outside what the
workers are notified of), quality validates it against the model's data contract exactly as a
landed file, and the scorer's handler scores it with the champion and records the scoring run
(so `monitor`, `status` and label joins see it). The finished files are then copied to OUT.
`--model` scores with another model directly (no records), after the same contract checks
the model itself carries.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnops_common.cli import ModelNameOption
from churnops_common.routing import MONITOR, QUALITY, SCORER, task_name

if TYPE_CHECKING:
    from churnops_common.embedded import EmbeddedPlatform
    from churnops_common.events import BatchScored, DataValidated

SCORE_TASK = task_name(SCORER, "DataValidated")
REPORT_TASK = task_name(QUALITY, "QualityReportRequested")
ESTIMATE_TASK = task_name(MONITOR, "BatchScored")  # the label-free estimate of the batch


class Refused(Exception):
    """The platform refused the file (quality rejected it): exit 1, nothing written."""


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command(name="score")(score)


def score(
    file: Annotated[Path, typer.Argument(help="A CSV or Parquet table of customers.")],
    out: Annotated[Path, typer.Option(help="Predictions file to write, .parquet or .csv.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Score with this model instead of the champion, directly and unrecorded: a"
            " local .joblib pipeline or an MLflow URI (models:/name/3, runs:/...)."
        ),
    ] = None,
    name: ModelNameOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line.")
    ] = False,
) -> None:
    """Validate FILE against the model's contract, then score it with the champion:
    probabilities, risk bands, top 3 reasons. Exit 1 (nothing written) when it is rejected.

    Writes OUT and, beside it, OUT-retention.csv: the customers by the expected profit of
    contacting them, with the profit cut (whom to contact) and the campaign's totals.
    """
    from churnops_common.cli import UserError, console, emit

    if not file.is_file():
        raise UserError(f"{file} does not exist or is not a file")
    if out.suffix not in {".parquet", ".csv"}:
        raise UserError(f"--out must end in .parquet or .csv, not {out.suffix or 'nothing'!r}")
    started = time.perf_counter()
    try:
        summary = _score_direct(file, out, model, as_json) if model else _score(file, out, name)
    except Refused as refused:
        emit(
            {"status": "rejected", "reason": str(refused), "rows": 0, "file": str(file)},
            as_json,
            lambda r: console.print(f"rejected: {r['reason']}", markup=False, highlight=False),
        )
        raise SystemExit(1) from None
    summary["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"scored {summary['rows']} rows with model {summary['model_name']!r} version"
        f" {summary['model_version']} in {summary['seconds']}s -> {out} (retention list:"
        f" {summary['retention']})",
        markup=False,
        highlight=False,
    )
    for warning in summary.get("warnings", []):
        console.print(f"warning: {warning}", markup=False, highlight=False)
    campaign = summary.get("campaign")
    if campaign:
        console.print(
            f"campaign: contact {campaign['contacted']} customers, expected cost"
            f" {campaign['expected_cost']:,.2f}, retained value"
            f" {campaign['expected_retained_value']:,.2f}, expected profit"
            f" {campaign['expected_profit']:,.2f}",
            markup=False,
            highlight=False,
        )


def _score(file: Path, out: Path, name: str | None) -> dict[str, Any]:
    """Through the platform: quality's verdict, then the scorer's handler with the champion;
    then the follow-ups nobody waits for (the file's quality report, the monitor's estimate).
    Quality's check reads the file whole; the scoring pass takes its columns from that read."""
    from churnops_common.tabular import shared_reads

    with shared_reads():
        return _score_through_platform(file, out, name)


def _score_through_platform(file: Path, out: Path, name: str | None) -> dict[str, Any]:
    from churnops_common.cli import UserError, contract_settings
    from churnops_common.embedded import EmbeddedPlatform
    from churnops_common.events import DataRejected
    from churnops_scorer.campaigns import find as find_campaign

    settings, contract = contract_settings(name)
    quality = EmbeddedPlatform(settings, services={"quality"}, in_stack=True)
    # The verdict first; the quality report (for people) follows once the outputs are out.
    render_report = quality.bus.handlers.pop(REPORT_TASK, None)
    landed = quality.drop(file, "new_data")
    quality.run()
    inline = settings.command_reports == "inline"
    estimates: list[BatchScored] = []
    try:
        verdict = quality.outcome_of(landed)
        if verdict is None:
            raise UserError(f"{file.name}: no verdict from quality (is it installed?)")
        if isinstance(verdict, DataRejected):
            raise Refused(verdict.reason)
        scored, estimates = _run_scorer(settings, verdict, with_monitor=inline)
        _copy_outputs(quality, scored, out)
    finally:
        _follow_up(quality, render_report, estimates)
    return {
        "status": "scored",
        "rows": scored.rows,
        "model_name": scored.model_name,
        "model_version": scored.model_version,
        "contract": contract.fingerprint if contract is not None else None,
        "id_column": settings.id_column,
        "warnings": [*verdict.warnings, *_retention_warnings(settings, file)],
        "predictions_object": scored.predictions.uri,
        "scoring_run_id": scored.scoring_run_id,
        "out": str(out),
        "retention": str(_retention_path(out)),
        "campaign": find_campaign(quality.runtime.engine, scored.scoring_run_id),
    }


def _follow_up(quality: EmbeddedPlatform, render_report: Any, estimates: list[BatchScored]) -> None:
    """The deliveries the command's answer does not depend on: the file's quality report and
    the monitor's label-free estimate of the batch. By default in one detached process (they
    take seconds nobody waits for); with `COMMAND_REPORTS=inline` the report is rendered here
    (the estimate already ran beside the scorer)."""
    from churnops_common.background import hand_over

    reports = quality.events_of("QualityReportRequested") if render_report is not None else []
    if quality.settings.command_reports == "background":
        deliveries = [(REPORT_TASK, event) for event in reports]
        deliveries += [(ESTIMATE_TASK, event) for event in estimates]
        hand_over(quality.settings, deliveries)
        return
    if render_report is not None:
        quality.bus.handlers[REPORT_TASK] = render_report
    for request in reports:
        quality.bus.publish_to(request, REPORT_TASK)
    quality.run()


def _run_scorer(
    settings: Any, verdict: DataValidated, *, with_monitor: bool
) -> tuple[BatchScored, list[BatchScored]]:
    """The scorer's own handler on the verdict, under an id fixed by the file and the
    champion: scoring the same file again with the same champion reuses the recorded run.
    Returns the scored batch and the BatchScored events this run published: the monitor
    estimates them here `with_monitor`, else they are for the follow-up."""
    from churnops_common.cli import UserError
    from churnops_common.embedded import EmbeddedPlatform
    from churnops_common.events import BatchScored, DataValidated, ObjectRef, stable_id
    from churnops_common.storage.base import parse_uri
    from churnops_scorer import records
    from churnops_scorer.models import champion_version

    version = champion_version(settings)
    if version is None:
        raise UserError(f"model {settings.mlflow_model_name!r} has no champion: train one first")
    event_id = str(stable_id("score-command", verdict.object.versioned_uri, version))
    request = DataValidated(
        **{**verdict.model_dump(), "event_id": event_id, "causation_id": verdict.event_id}
    )
    services = {SCORER, MONITOR} if with_monitor else {SCORER}
    scorer = EmbeddedPlatform(settings, services=services, in_stack=True)
    scorer.bus.publish_to(request, SCORE_TASK)
    scorer.run()
    published = [e for e in scorer.events_of("BatchScored") if isinstance(e, BatchScored)]
    for event in published:
        if event.input.versioned_uri == verdict.object.versioned_uri:
            return event, published
    recorded = records.find_run(
        scorer.runtime.engine,
        records.run_id_for(verdict.object, settings.mlflow_model_name, version),
    )
    if recorded is not None:  # this file and this champion: already scored, reuse the run
        bucket, key = parse_uri(recorded.predictions_uri)
        reused = BatchScored(
            input=verdict.object,
            predictions=ObjectRef(bucket=bucket, key=key),
            scoring_run_id=recorded.run_id,
            model_name=recorded.model_name,
            model_version=recorded.model_version,
            rows=int(recorded.rows),
        )
        return reused, published
    raise UserError(
        f"the scorer did not score {verdict.object.uri}: `churnops dead-letters` says why"
    )


def _copy_outputs(platform: EmbeddedPlatform, scored: BatchScored, out: Path) -> None:
    """OUT (Parquet as written, or CSV from it) and OUT-retention.csv, each replaced whole."""
    import shutil

    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from churnops_scorer.layout import RETENTION_FILE

    store, ref = platform.runtime.store, scored.predictions
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with store.local_path(ref.bucket, ref.key) as path:
        if out.suffix == ".parquet":
            shutil.copyfile(path, partial)
        else:
            pa_csv.write_csv(pq.read_table(path), partial)
    partial.replace(out)
    retention_key = f"{ref.key.rsplit('/', 1)[0]}/{RETENTION_FILE}"
    _retention_path(out).write_bytes(store.get_bytes(ref.bucket, retention_key))


def _retention_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}-retention.csv")


def _score_direct(file: Path, out: Path, model: str | None, as_json: bool) -> dict[str, Any]:
    from churnops_common.cli import UserError
    from churnops_scorer.local import ContractMismatch, score_file

    try:
        result = score_file(file, out, model, progress=not as_json)
    except ContractMismatch as exc:
        raise Refused(str(exc)) from None
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    return {
        "status": "scored",
        "rows": result.rows,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "out": str(out),
        "retention": str(result.retention_path),
        "warnings": list(result.warnings),
        "campaign": result.campaign,
    }


def _retention_warnings(settings: Any, file: Path) -> list[str]:
    from churnops_common.tabular import columns_of
    from churnops_scorer.retention import RetentionList

    warning = RetentionList.from_settings(settings).value_warning(columns_of(file))
    return [warning] if warning else []
