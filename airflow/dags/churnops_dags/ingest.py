"""Which ingest sources are due in a dag_ingest run, from the sources file's schedules.

dag_ingest ticks hourly; a source is due in the run whose hour holds its latest scheduled time
(a cron expression or preset such as `@daily`, read with croniter, which Airflow itself ships).
Its logical date is that time's date, so every try and re-run of the run asks for the same
snapshot. Only names and schedules are read here: credentials stay with the ingest worker.
PyYAML and croniter are imported inside the functions (the DAG processor parses this often).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TICK = timedelta(hours=1)
DEFAULT_SOURCES_FILE = "ingest_sources.yaml"  # the platform's INGEST_SOURCES_FILE default


def sources_file() -> Path:
    return Path(os.environ.get("INGEST_SOURCES_FILE") or DEFAULT_SOURCES_FILE)


def read_schedules(path: Path) -> dict[str, str | None]:
    """source name -> schedule (None: on demand only); a missing file means no sources."""
    import yaml

    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    sources = document.get("sources") or {}
    if not isinstance(sources, dict):
        raise ValueError(f"{path}: `sources` must be a mapping of names to sources")
    return {
        str(name): (str(spec["schedule"]) if spec.get("schedule") else None)
        for name, spec in sources.items()
        if isinstance(spec, dict)
    }


def due_requests(
    schedules: dict[str, str | None], tick: datetime, only: list[str] | None = None
) -> list[dict[str, Any]]:
    """IngestRequested fields for each source due at `tick` (or for each one named in `only`)."""
    from croniter import croniter

    if only is not None:
        unknown = sorted(set(only) - set(schedules))
        if unknown:
            raise ValueError(
                f"no source {unknown} in the sources file (known: {sorted(schedules)})"
            )
        return [{"source": name, "logical_date": tick.date().isoformat()} for name in only]
    due = []
    for name, schedule in sorted(schedules.items()):
        if schedule is None:
            continue
        if not croniter.is_valid(schedule):
            raise ValueError(f"source {name!r}: {schedule!r} is not a cron schedule")
        # The latest scheduled time at or before the tick (hence the second's nudge).
        latest: datetime = croniter(schedule, tick + timedelta(seconds=1)).get_prev(datetime)
        if tick - TICK < latest <= tick:
            due.append({"source": name, "logical_date": latest.date().isoformat()})
    return due
