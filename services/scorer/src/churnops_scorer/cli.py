"""CLI commands of the scorer service, added to `churnops` through an entry point."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command(name="score")(score)


def score(
    file: Annotated[Path, typer.Argument(help="A CSV or Parquet table of customers.")],
    out: Annotated[Path, typer.Option(help="Predictions file to write, .parquet or .csv.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="A local .joblib pipeline or an MLflow URI (models:/name/3, "
            "runs:/...); default: the registry's champion."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line.")
    ] = False,
) -> None:
    """Score a file with the champion (or --model): probabilities, risk bands, top 3 reasons.

    Writes OUT and, beside it, OUT-retention.csv (the customers with the largest expected loss).
    """
    from churnops_common.cli import UserError, console, emit
    from churnops_scorer.local import score_file

    if not file.is_file():
        raise UserError(f"{file} does not exist or is not a file")
    if out.suffix not in {".parquet", ".csv"}:
        raise UserError(f"--out must end in .parquet or .csv, not {out.suffix or 'nothing'!r}")
    started = time.perf_counter()
    result = score_file(file, out, model, progress=not as_json)
    summary: dict[str, Any] = {
        "rows": result.rows,
        "seconds": round(time.perf_counter() - started, 3),
        "model_version": result.model_version,
    }
    if as_json:
        print(json.dumps(summary))
        return
    emit(
        summary,
        False,
        lambda r: console.print(
            f"scored {r['rows']} rows with model version {r['model_version']} in {r['seconds']}s "
            f"-> {out} (retention list: {result.retention_path})"
        ),
    )
