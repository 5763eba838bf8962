"""Logging for services and the CLI: one line per record, secrets never formatted in."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    level = level or os.environ.get("CHURNOPS_LOG_LEVEL", "INFO")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Chatty libraries stay at WARNING unless asked.
    for noisy in ("botocore", "urllib3", "alembic", "mlflow", "kombu", "celery.app.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
