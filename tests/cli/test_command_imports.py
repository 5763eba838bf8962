"""What `churnops score` imports before it reads a row. Every heavy library a command does not
need costs it its import on every run (seconds, where bytecode is not cached): the stages'
modules import the report, registry, broker and training stacks only where they are used."""

from __future__ import annotations

import subprocess
import sys

# The modules `churnops score` runs: the CLI, the embedded platform, quality's and the
# scorer's handlers, and the campaign record.
SCORE_PATH = (
    "churnops_common.cli",
    "churnops_common.embedded",
    "churnops_quality.handlers",
    "churnops_scorer.handlers",
    "churnops_scorer.cli",
    "churnops_scorer.campaigns",
)
# Libraries it must not import for that (the model's own library loads with the model).
HEAVY = (
    "celery",
    "evidently",
    "jinja2",
    "lightgbm",
    "matplotlib",
    "mlflow",
    "optuna",
    "redis",
    "scipy",
    "sklearn",
    "weasyprint",
    "xgboost",
)


def test_the_score_commands_modules_import_no_heavy_library() -> None:
    script = (
        f"import sys\nimport {', '.join(SCORE_PATH)}\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()
    assert found == []
