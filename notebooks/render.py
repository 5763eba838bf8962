"""Execute the EDA and explainability notebook headless and put its HTML in the reports bucket.

    uv run python notebooks/render.py [--home .churnops/demo | --stack] [--dataset FILE] [--json]

Embedded (default): against the state of an embedded home (`churnops demo` makes one in
.churnops/demo). --stack: against the stack that the environment's settings name. The notebook
runs in a fresh kernel (nbclient) that gets these settings through its environment; any cell
error fails the run. The HTML (plots inline) lands at
reports/notebooks/churn_risk_eda_explainability/<UTC timestamp>.html and is also written beside
--out when given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOTEBOOK = Path(__file__).resolve().parent / "churn_risk_eda_explainability.ipynb"
REPORT_PREFIX = "notebooks/churn_risk_eda_explainability"
TIMEOUT_S = 900


def execute(notebook: Path, env: dict[str, str], timeout_s: int = TIMEOUT_S) -> Any:
    """The executed notebook; raises nbclient's CellExecutionError on the first failing cell."""
    import nbformat
    from nbclient import NotebookClient

    document = nbformat.read(notebook, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel is started with this process's environment
    try:
        NotebookClient(
            document,
            timeout=timeout_s,
            kernel_name="python3",
            resources={"metadata": {"path": str(notebook.parent)}},
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return document


def to_html(document: Any) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(document)
    return str(body)


def render(env: dict[str, str], out: Path | None = None) -> dict[str, Any]:
    """Execute, export, and store the HTML with the settings `env` describes."""
    from churnops_common.settings import Settings
    from churnops_common.storage import object_store_from_settings

    started = time.perf_counter()
    html = to_html(execute(NOTEBOOK, env))
    settings = Settings(
        **{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields}
    )
    store = object_store_from_settings(settings)
    store.ensure_buckets([settings.minio_reports_bucket])
    key = f"{REPORT_PREFIX}/{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html"
    info = store.put_bytes(settings.minio_reports_bucket, key, html.encode(), "text/html")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    return {
        "report": info.uri,
        "plots": html.count('src="data:image/png;base64,'),
        "bytes": len(html),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".churnops/demo"))
    parser.add_argument("--stack", action="store_true", help="Use the environment's settings.")
    parser.add_argument("--dataset", type=Path, help="A CSV/Parquet table for the EDA part.")
    parser.add_argument("--out", type=Path, help="Also write the HTML here.")
    parser.add_argument("--json", action="store_true", help="Print one JSON line at the end.")
    args = parser.parse_args()
    env: dict[str, str] = {}
    if not args.stack:
        if not (args.home / "monitoring.db").is_file():
            print(f"{args.home} holds no embedded state: run `make demo` first", file=sys.stderr)
            return 2
        env = {"CHURNOPS_MODE": "embedded", "CHURNOPS_HOME": str(args.home.resolve())}
    else:
        env = {"CHURNOPS_MODE": "stack"}
    if args.dataset:
        env["CHURNOPS_NOTEBOOK_DATASET"] = str(args.dataset.resolve())
    result = render(env, args.out)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['plots']} plots, {result['seconds']}s -> {result['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
