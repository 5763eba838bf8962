"""CLI commands of the quality service, added to `churnops` through an entry point."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this service's commands to the churnops CLI."""
