"""CLI commands of the quality service, added to `churnops` through an entry point.

churnops psi BATCH [--json]               per-feature PSI of BATCH against the model's baseline
churnops psi REFERENCE BATCH [--json]     per-feature PSI of BATCH against a reference file
churnops validate FILE [--kind K] [--json] check FILE against the model's data contract
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from churnops_common.cli import (
    JsonFlag,
    ModelNameOption,
    UserError,
    console,
    contract_settings,
    emit,
)
from churnops_common.events import DataKind

if TYPE_CHECKING:
    import pandas as pd

FileArg = Annotated[Path, typer.Argument(dir_okay=False, help="A CSV or Parquet file.")]


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command("psi")(psi)
    app.command("validate")(validate)


def psi(
    first: FileArg,
    second: Annotated[
        Path | None, typer.Argument(dir_okay=False, help="The batch, when FIRST is a reference.")
    ] = None,
    name: ModelNameOption = None,
    as_json: JsonFlag = False,
) -> None:
    """PSI of each feature: `psi BATCH` against the model's baseline (its stored profile), or
    `psi REFERENCE BATCH` against a reference file (fixed bins from the reference)."""
    from churnops_quality.psi import compute_psi
    from churnops_quality.reading import FileLimits, FileProblem, iter_table, precheck

    settings, contract = contract_settings(name)
    limits = FileLimits.from_settings(settings)
    try:
        if second is None:
            profile = _baseline_profile(settings)
            current = first
        else:
            profile = _reference_profile(_existing(first), settings, limits)
            current = second
        facts = precheck(_existing(current), limits)
        chunks = iter_table(current, facts, settings.id_column)
        result = compute_psi(profile, chunks if as_json else _with_progress(chunks))
    except FileProblem as problem:
        raise UserError(problem.reason) from None
    if not result.features:
        raise UserError("no feature of the reference is present in the current file")
    features = {f.name: round(f.psi, 6) for f in result.features}
    output = {
        "features": features,
        "max_psi": max(features.values()),
        "threshold": settings.psi_threshold,
        "breached": sorted(n for n, v in features.items() if v >= settings.psi_threshold),
        "reference": str(first) if second is not None else "baseline",
        "contract": contract.fingerprint if contract is not None else None,
    }
    emit(output, as_json, lambda r: _print_psi(r, settings.psi_threshold))


def _baseline_profile(settings: Any) -> Any:
    from churnops_common.storage import object_store_from_settings
    from churnops_quality.baseline import load_baseline

    baseline = load_baseline(object_store_from_settings(settings), settings)
    if baseline is None:
        raise UserError(
            f"model {settings.mlflow_model_name!r} has no baseline yet: train one first"
            " (churnops train), or give a reference file: churnops psi REFERENCE BATCH"
        )
    return baseline.profile


def _reference_profile(path: Path, settings: Any, limits: Any) -> Any:
    from churnops_quality.profile import build_profile
    from churnops_quality.reading import precheck, read_whole
    from churnops_quality.schema import infer_schema

    frame = read_whole(path, precheck(path, limits), settings.id_column)
    return build_profile(frame, infer_schema(frame, settings.id_column, settings.target_column))


def validate(
    file: FileArg,
    kind: Annotated[str, typer.Option(help="new_data, labels or training.")] = "new_data",
    name: ModelNameOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Check FILE against the model's data contract and baseline: exit 0 accepted, 1 rejected."""
    from churnops_common.storage import object_store_from_settings
    from churnops_quality.baseline import load_baseline
    from churnops_quality.checks import check_file

    kinds: dict[str, DataKind] = {
        "new_data": "new_data",
        "labels": "labels",
        "training": "training",
    }
    if kind not in kinds:
        raise UserError(f"--kind must be new_data, labels or training, not {kind!r}")
    settings, contract = contract_settings(name)
    baseline = load_baseline(object_store_from_settings(settings), settings)
    if baseline is None and kind != "training":
        raise UserError(
            f"model {settings.mlflow_model_name!r} has no data contract yet: train it first"
            " (churnops train --data FILE --target COLUMN), or pass --name"
        )
    result = check_file(_existing(file), kinds[kind], baseline, settings)
    verdict = result.verdict
    output: dict[str, Any] = {
        "file": str(file),
        "status": verdict.status,
        "reason": verdict.reason or None,
        "rows": verdict.rows,
        "has_target": verdict.has_target,
        "warnings": list(verdict.warnings),
        "issues": [i.model_dump() for i in verdict.issues],
        "model_name": settings.mlflow_model_name,
        "contract": contract.fingerprint if contract is not None else None,
        "baseline_version": baseline.version if baseline else None,
        "max_psi": result.psi.max_psi if result.psi else None,
        "psi": result.psi.by_feature if result.psi else {},
    }
    emit(output, as_json, _print_verdict)
    if verdict.status == "rejected":
        raise SystemExit(1)


def _with_progress(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Pass chunks through while a transient progress line counts the rows (on stderr)."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("PSI: 0 rows", total=None)
        rows = 0
        for chunk in chunks:
            yield chunk
            rows += len(chunk)
            progress.update(task, description=f"PSI: {rows:,} rows")


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return path


def _print_psi(result: dict[str, Any], threshold: float) -> None:
    from rich.text import Text

    table = Table("feature", "PSI", title=f"PSI against the {result['reference']}")
    for name, value in sorted(result["features"].items(), key=lambda kv: -kv[1]):
        style = "bold red" if value >= threshold else ""
        table.add_row(Text(name), f"{value:.4f}", style=style)
    console.print(table)
    console.print(f"max PSI {result['max_psi']:.4f} (threshold {threshold})")


def _print_verdict(result: dict[str, Any]) -> None:
    if result["status"] == "rejected":
        console.print(Text.assemble(("rejected", "red"), f": {result['reason']}"), highlight=False)
    else:
        psi = f", max PSI {result['max_psi']:.4f}" if result["max_psi"] else ""
        console.print(
            Text.assemble(("accepted", "green"), f": {result['rows']} rows{psi}"), highlight=False
        )
    for warning in result["warnings"]:
        console.print(f"  warning: {warning}", markup=False, highlight=False)
