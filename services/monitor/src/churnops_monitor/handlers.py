"""Handlers of the monitor service: plain functions, event in, follow-up events out."""

from __future__ import annotations

from churnops_common.bus import Handler

# task name (from churnops_common.routing) -> handler
HANDLERS: dict[str, Handler] = {}
