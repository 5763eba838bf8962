"""`churnops evaluate`: a scored file against its known outcomes, everything a data scientist
checks: ranking (ROC-AUC, PR-AUC), calibration (Brier, ECE), profit (EMPC, maximum profit,
profit-optimal contact rate, from `empulse`) and the realized profit of the profit cut against
the two plain policies, with the same functions the monitor applies to labelled batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from churnops_common.contract import target_codes, unknown_target_message
from churnops_common.ml.calibration_error import expected_calibration_error
from churnops_common.ml.economics import Economics
from churnops_common.ml.profit_metrics import profit_metrics
from churnops_common.settings import Settings
from churnops_common.tabular import columns_of, read_frame
from churnops_monitor.decision import SCORE, realized_profit


class EvaluationError(ValueError):
    """The files cannot be evaluated together; the message says why and what to do."""


def _columns(path: Path, role: str) -> list[str]:
    if not path.is_file():
        raise EvaluationError(f"{role} {path}: no such file")
    try:
        return columns_of(path)
    except Exception as exc:  # a parser's traceback helps nobody on the command line
        raise EvaluationError(
            f"{role} {path.name} is not a readable CSV or Parquet: {exc}"
        ) from exc


def outcomes(predictions: Path, labels: Path, settings: Settings) -> pd.DataFrame:
    """(id, churn_probability, target[, value column]) of the ids in both files; only the
    columns needed are read."""
    id_column, target = settings.id_column, settings.target_column
    value = settings.retention_value_column
    scored_columns, label_columns = _columns(predictions, "predictions"), _columns(labels, "labels")
    for role, path, columns, needed in (
        ("predictions", predictions, scored_columns, (id_column, SCORE)),
        ("labels", labels, label_columns, (id_column, target)),
    ):
        missing = [c for c in needed if c not in columns]
        if missing:
            raise EvaluationError(f"{role} {path.name} lacks column(s) {missing}")
    wanted = [id_column, SCORE, *([value] if value in scored_columns else [])]
    scored = read_frame(predictions, wanted, text_columns=[id_column])
    wanted = [
        id_column,
        target,
        *([value] if value in label_columns and value not in wanted else []),
    ]
    known = read_frame(labels, wanted, text_columns=[id_column]).dropna(subset=[target])
    codes, unknown = target_codes(known[target])
    if unknown.any():
        raise EvaluationError(unknown_target_message(target, known[target], unknown))
    known[target] = codes
    known = known[known[target] >= 0].drop_duplicates(id_column, keep="last")
    scored = scored.drop(columns=[target], errors="ignore")
    frame = scored.drop_duplicates(id_column, keep="last").merge(known, on=id_column)
    if frame.empty:
        raise EvaluationError(
            f"no id of {labels.name} is in {predictions.name} (joined on {id_column!r})"
        )
    return frame


def evaluation(frame: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """Every figure, None where undefined (one class only)."""
    target = settings.target_column
    y = frame[target].to_numpy(dtype=np.int64)
    p = frame[SCORE].to_numpy(dtype=np.float64)
    both = 0 < int(y.sum()) < len(y)
    economics = Economics.from_settings(settings)
    profit = profit_metrics(y, p, economics)
    realized = realized_profit(frame, target, settings)
    return {
        "rows": len(y),
        "churners": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "empc": profit.empc,
        "mp": profit.mp,
        "contact_rate": profit.contact_rate,
        "optimal_threshold": profit.optimal_threshold,
        "contacted": realized.contacted,
        "profit": realized.profit,
        "contacted_top10": realized.contacted_top10,
        "profit_top10": realized.profit_top10,
        "contacted_p50": realized.contacted_p50,
        "profit_p50": realized.profit_p50,
    }
