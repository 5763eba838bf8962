"""What a chain of events did, in sentences for people (`churnops drop`, `request`, `replay`).

`--json` keeps the event types for machines; a person reads one line per thing that happened,
with the numbers that matter and user text as it is (the console prints it without markup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from churnops_common.events import Event


def _name(ref: Any) -> str:
    return str(getattr(ref, "key", "") or "").rsplit("/", 1)[-1] or "the file"


def _psi(event: Any) -> str:
    worst = sorted(event.features.items(), key=lambda kv: -kv[1])[:3]
    named = ", ".join(f"{k} {v:.2f}" for k, v in worst)
    return (
        f"drift in {_name(event.object)}: {len(event.features)} feature(s) above PSI"
        f" {event.threshold:g} ({named})"
    )


def _scored(event: Any) -> str:
    quality = f", PR-AUC {event.pr_auc:.3f} on its labels" if event.pr_auc is not None else ""
    return (
        f"scored {event.rows:,} rows of {_name(event.input)} with {event.model_name}"
        f" v{event.model_version}{quality}: {event.predictions.uri}"
    )


def _promoted(event: Any) -> str:
    before = f" over v{event.previous_version}" if event.previous_version else ""
    return (
        f"promoted {event.model_name} v{event.model_version}{before}"
        f" (holdout PR-AUC {event.challenger_pr_auc:.3f})"
    )


SENTENCES: dict[str, Callable[[Any], str]] = {
    "DataLanded": lambda e: f"{_name(e.object)} landed as {e.kind}",
    "DataValidated": lambda e: (
        f"{_name(e.object)} accepted: {e.rows:,} rows"
        + (f" ({len(e.warnings)} warning(s))" if e.warnings else "")
    ),
    "DataRejected": lambda e: f"{_name(e.object)} rejected: {e.reason}",
    "PsiBreached": _psi,
    "BatchScored": _scored,
    "RetrainRequested": lambda e: (
        f"retraining requested ({e.reason})" + (f": {e.detail}" if e.detail else "")
    ),
    "PerformanceDegraded": lambda e: (
        f"{e.metric} of {e.model_name} v{e.model_version}"
        f" {'estimated' if e.estimated else 'measured'} at {e.value:.3f},"
        f" below {e.threshold:.3f}"
    ),
    "ModelPromoted": _promoted,
    "ModelRejected": lambda e: f"challenger v{e.model_version} not promoted: {e.reason}",
    "IntegrityFailed": lambda e: f"integrity check failed in {e.task_name}: {e.reason}",
}


def sentences(events: Iterable[Event]) -> list[str]:
    """One sentence per event a person cares about (requests between stages are left out)."""
    return [SENTENCES[e.event_type](e) for e in events if e.event_type in SENTENCES]
