"""A batch's Evidently data drift page, beside its quality report, with the same verdict.

The batch against the baseline's sample, every compared feature typed by the contract, drift
decided by the platform's PSI of this quality run at `PSI_THRESHOLD` (Evidently's test is set
to it: `churnops_common.evidently_drift`), and the dataset called drifted when any feature is.
So Evidently's "Dataset Drift is detected" and its drifted columns are the report's. Rows are
sampled to the report cap for the plots only: the scores are of every row.
"""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

import pandas as pd

from churnops_common.contract import baseline_prefix
from churnops_common.events import ObjectRef
from churnops_common.evidently_drift import (
    any_drift_share,
    column_types,
    inert,
    platform_method,
    platform_scores,
    prepare,
    save_html,
)
from churnops_common.runtime import Runtime
from churnops_common.tabular import read_table
from churnops_quality.report import ReportInput, verdict_words
from churnops_quality.schema import Schema

PAGE = "evidently-drift.html"
SAMPLE_SEED = 0


def _frame(runtime: Runtime, bucket: str, key: str, etag: str | None, cap: int) -> pd.DataFrame:
    with runtime.store.local_path(bucket, key, etag=etag or None) as path:
        frame: pd.DataFrame = read_table(path)
    return frame.sample(cap, random_state=SAMPLE_SEED) if len(frame) > cap else frame


def render_page(runtime: Runtime, data: ReportInput, batch: ObjectRef) -> str | None:
    """The page's HTML, or None when the run has no PSI (nothing to show)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if data.psi is None or data.baseline_version is None or not data.psi.features:
        return None
    settings = runtime.settings
    bucket = settings.minio_models_bucket
    prefix = f"{baseline_prefix(settings.mlflow_model_name)}/v{data.baseline_version:04d}"
    schema = Schema.model_validate_json(runtime.store.get_bytes(bucket, f"{prefix}/schema.json"))
    cap = settings.monitor_report_max_rows
    reference = _frame(runtime, bucket, f"{prefix}/sample.parquet", None, cap)
    current = _frame(runtime, batch.bucket, batch.key, batch.etag, cap)
    scores = data.psi.by_feature
    columns = [c for c in scores if c in reference.columns and c in current.columns]
    numeric, categorical = column_types(schema, columns, reference, current)
    names = [inert(c) for c in numeric], [inert(c) for c in categorical]
    definition = DataDefinition(numerical_columns=names[0], categorical_columns=names[1])
    ref = Dataset.from_pandas(prepare(reference, numeric, categorical), data_definition=definition)
    cur = Dataset.from_pandas(prepare(current, numeric, categorical), data_definition=definition)
    preset = DataDriftPreset(
        columns=names[0] + names[1],
        method=platform_method(),
        threshold=data.threshold,
        drift_share=any_drift_share(len(columns)),
    )
    banner = (
        '<div id="churnops-verdict" style="font:600 1.1em system-ui,sans-serif;padding:.7em 1em;'
        f'background:#f4f4f4;border-bottom:1px solid #ccc">{escape(data.title)}: '
        f"{escape(verdict_words(data))}</div>"
    )
    with platform_scores({inert(c): scores[c] for c in columns}):
        snapshot = Report([preset]).run(cur, ref)
        with tempfile.TemporaryDirectory(prefix="churnops-evidently-") as tmp:
            path = Path(tmp) / PAGE
            save_html(snapshot, str(path), banner)
            return path.read_text(encoding="utf-8")
