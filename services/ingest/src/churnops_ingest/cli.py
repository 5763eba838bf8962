"""CLI command of the ingest service, added to `churnops` through an entry point."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

from churnops_common.events import DataKind

KINDS: tuple[DataKind, ...] = ("new_data", "labels", "training")


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
    app.command(name="ingest")(ingest_cmd)


def ingest_cmd(
    source: Annotated[
        str | None, typer.Argument(help="A source named in the sources file (INGEST_SOURCES_FILE).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Ad hoc: a SQLAlchemy database URL (instead of SOURCE).")
    ] = None,
    query: Annotated[str | None, typer.Option(help="Ad hoc: the SQL query to land.")] = None,
    kind: Annotated[str, typer.Option(help="Ad hoc: new_data, labels or training.")] = "new_data",
    name: Annotated[str, typer.Option(help="Ad hoc: the source's name in the key.")] = "adhoc",
    logical_date: Annotated[
        str | None,
        typer.Option("--date", help="Logical date YYYY-MM-DD (default: today, UTC)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line.")
    ] = False,
) -> None:
    """Land a warehouse query or API snapshot in landing/<kind>/<source>/ (once per date).

    Embedded mode processes it at once (validation, then scoring or training); in the stack,
    MinIO's notification starts the pipeline. The same source and date land one object: a re-run
    writes nothing (created: false), and a changed result under the same date is refused.
    """
    from churnops_common.cli import UserError, console, emit
    from churnops_common.errors import PermanentError, TransientError
    from churnops_common.settings import get_settings
    from churnops_ingest.ingest_source import ingest, landed_event
    from churnops_ingest.sources import Source, SqlSpec, find_source

    settings = get_settings()
    day = _parse_date(logical_date)
    try:
        if source is not None:
            if url or query:
                raise UserError("give either SOURCE or --url with --query, not both")
            spec = find_source(settings.ingest_sources_file, source)
            label = source
        else:
            if not (url and query):
                raise UserError("give SOURCE (from the sources file), or --url and --query")
            if kind not in KINDS:
                raise UserError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
            spec = Source(kind=kind, sql=SqlSpec(url=url, query=query))
            label = name
        result: dict[str, Any]
        if settings.is_stack:
            from churnops_common.storage import object_store_from_settings

            with _progress(label, enabled=not as_json) as on_rows:
                done = ingest(
                    object_store_from_settings(settings), settings, label, spec, day, on_rows
                )
            result = {**done.to_dict(), "note": "MinIO's notification starts the pipeline"}
        else:
            from churnops_common.embedded import EmbeddedPlatform

            platform = EmbeddedPlatform(settings)
            with _progress(label, enabled=not as_json) as on_rows:
                done = ingest(platform.runtime.store, settings, label, spec, day, on_rows)
            platform.publish(landed_event(done))
            handled = platform.run()
            events = [e.event_type for e in platform.bus.published]
            result = {**done.to_dict(), "handled": handled, "events": events}
    except (PermanentError, TransientError) as exc:
        raise UserError(str(exc)) from exc

    def show(r: dict[str, Any]) -> None:
        from rich.markup import escape

        verb = "landed" if r["created"] else "already landed (nothing written)"
        console.print(
            escape(f"{r['source']}: {verb}: {r['rows']} rows in {r['object']}"), highlight=False
        )
        if r.get("events"):
            console.print(f"events: {', '.join(r['events'])}", highlight=False)

    emit(result, as_json, show)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """Rows fetched so far, on stderr (the total is unknown until the source runs out)."""
    if not enabled:
        yield None
        return
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from churnops_common.cli import console

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(escape(f"{label}: 0 rows"))
        fetched = 0

        def on_rows(rows: int) -> None:
            nonlocal fetched
            fetched += rows
            progress.update(task, description=escape(f"{label}: {fetched:,} rows"))

        yield on_rows


def _parse_date(value: str | None) -> date:
    from churnops_common.cli import UserError

    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--date must be YYYY-MM-DD, not {value!r}") from None
