"""Logging for services and the CLI: one line per record, secrets never formatted in."""

from __future__ import annotations

import logging
import os
import warnings

# Chatty libraries stay at WARNING in services unless asked.
NOISY = ("botocore", "urllib3", "alembic", "mlflow", "kombu", "celery.app.trace")
# What the libraries say (their loggers and Python warnings: Evidently's SyntaxWarning, scipy's
# RuntimeWarning, MLflow's note on pickled models) is for `-v`, not for the terminal of a CLI
# user who can do nothing about it.
LIBRARIES = (*NOISY, "evidently", "optuna", "lightgbm", "numba", "matplotlib", "fontTools")
LIBRARIES_ALL = (*LIBRARIES, "weasyprint", "py.warnings", "sqlalchemy", "filelock")


def configure_logging(level: str | None = None) -> None:
    level = level or os.environ.get("CHURNOPS_LOG_LEVEL", "INFO")
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_cli_logging(verbose: bool) -> None:
    """The CLI's logging: `-v` (or CHURNOPS_LOG_LEVEL) logs everything, library warnings
    included, with timestamps; otherwise only the platform's own warnings and errors reach the
    terminal, as plain lines, and library warnings are dropped."""
    logging.captureWarnings(True)  # warnings.warn goes through logging ("py.warnings")
    root = logging.getLogger()
    chosen = os.environ.get("CHURNOPS_LOG_LEVEL")
    if verbose or chosen:
        root.setLevel((chosen or "INFO").upper())
        warnings.simplefilter("default")  # every library warning, once per place, into the log
        for name in LIBRARIES_ALL:  # their warnings, not their chatter
            logging.getLogger(name).setLevel(logging.WARNING)
        return
    # MLflow configures its own logger from this variable when it is first imported.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    root.setLevel(logging.WARNING)
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    for name in LIBRARIES_ALL:
        logging.getLogger(name).setLevel(logging.ERROR)
