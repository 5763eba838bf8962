"""Discovery of installed services: their handlers and CLI commands, via entry points.

A process has exactly the stages whose packages are installed: the embedded demo grows as the
service packages do, and a slim image (bridge, Airflow) carries none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from churnops_common.handling import Handler

if TYPE_CHECKING:
    import typer

log = logging.getLogger(__name__)

HANDLERS_GROUP = "churnops.handlers"
CLI_GROUP = "churnops.cli"


def load_handlers(services: set[str] | None = None) -> dict[str, Handler]:
    """task name -> handler, from every installed service (or only those named)."""
    handlers: dict[str, Handler] = {}
    for ep in entry_points(group=HANDLERS_GROUP):
        if services is not None and ep.name not in services:
            continue
        table: Mapping[str, Handler] = ep.load()
        handlers.update(table)
    return handlers


def installed_services() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=HANDLERS_GROUP))


def register_cli_plugins(app: typer.Typer) -> None:
    for ep in sorted(entry_points(group=CLI_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a broken optional service must not take the CLI down
            log.warning("CLI commands of %s unavailable: %s", ep.name, exc)
            continue
        register(app)
