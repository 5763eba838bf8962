"""`churnops demo`: the whole lifecycle in embedded mode, with whatever stages are installed.

Train a first champion, score three batches, reject a malformed file, estimate the performance
of a shifted batch before its labels (and compare once they land), detect drift on a labelled
drifted batch, retrain, promote the better model and rescore, then build the monitoring report
over all of it. Each step is an event dropped into the in-process bus; the stages react exactly
as the workers would.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from churnops_common.dispatch import Outcome
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataKind, Event, MonitoringRequested
from churnops_common.settings import Settings
from churnops_common.synthetic import generate

Progress = Callable[[str], None]


@dataclass
class DemoSummary:
    stages: list[str]
    batches_scored: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    psi_breaches: int = 0
    estimated_degradations: int = 0
    # The drifted batch's PR-AUC: estimated before its labels, realized once they landed.
    drifted_pr_auc_estimated: float | None = None
    drifted_pr_auc_realized: float | None = None
    # The retention campaigns (the profit cut of each batch's latest scoring), added up.
    customers_to_contact: int = 0
    campaign_expected_profit: float | None = None
    retrains: int = 0
    promotions: int = 0
    champion_version: str | None = None
    events_handled: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    home: str = ""
    # The monitoring report the demo ends with (a local file to open), and the list of reports.
    monitoring_report: str | None = None
    monitoring_reports: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DemoStep:
    title: str
    kind: DataKind
    name: str
    rows: int
    seed: int
    drift: float = 0.0
    loyalty: float = 0.0  # a covariate shift only: see `synthetic.generate`
    with_target: bool = False
    malformed: bool = False
    labels_only: bool = False  # the outcomes (id, target) of the batch with the same seed


# The batch whose performance is estimated before its labels and realized after.
SHIFTED_BATCH = "batch-0005-shifted.csv"

STEPS = (
    DemoStep(
        "training set lands: train the first champion",
        "training",
        "train-0001.csv",
        8000,
        1,
        with_target=True,
    ),
    DemoStep("batch 1 lands: validate and score", "new_data", "batch-0001.csv", 2000, 11),
    DemoStep("batch 2 lands: validate and score", "new_data", "batch-0002.csv", 2000, 12),
    DemoStep("batch 3 lands: validate and score", "new_data", "batch-0003.csv", 2000, 13),
    DemoStep(
        "a malformed file lands: reject it with its reason",
        "new_data",
        "batch-0004-broken.csv",
        0,
        0,
        malformed=True,
    ),
    DemoStep(
        "a shifted batch lands (established customers), outcomes unknown: PSI breach, and fewer"
        " churners to find: the estimated PR-AUC falls at once",
        "new_data",
        SHIFTED_BATCH,
        8000,
        15,
        loyalty=1.0,
    ),
    DemoStep(
        "a drifted, labelled batch lands: PSI breach, retrain, promote, rescore",
        "new_data",
        "batch-0006-drifted.csv",
        8000,
        16,
        drift=1.0,
        with_target=True,
    ),
    DemoStep(
        "the shifted batch's outcomes land weeks later: its realized PR-AUC beside the estimate",
        "labels",
        "labels-0005-shifted.csv",
        8000,
        15,
        loyalty=1.0,
        labels_only=True,
    ),
)


def _write_step_file(step: DemoStep, folder: Path) -> Path:
    path = folder / step.name
    if step.malformed:
        # Semicolons instead of commas, and no id column: a classic export mistake.
        path.write_text("region;age;tenure_months\nnorth;41;12\nsouth;35;3\n", encoding="utf-8")
        return path
    frame = generate(step.rows, seed=step.seed, drift=step.drift, loyalty=step.loyalty)
    if step.labels_only:
        frame = frame[["customer_id", "churned"]]
    elif not step.with_target:
        frame = frame.drop(columns=["churned"])
    frame.to_csv(path, index=False)
    return path


MARKER = ".churnops-demo"


def _fresh_home(home: Path) -> None:
    """Wipe the demo's own folder from an earlier run; never a folder the demo did not make."""
    if home.exists():
        if any(home.iterdir()) and not (home / MARKER).is_file():
            raise ValueError(
                f"refusing to wipe {home}: it is not empty and not a demo folder; "
                "pick another --home"
            )
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("state of `churnops demo`; wiped at the next run\n")


def run_demo(settings: Settings, progress: Progress = print) -> DemoSummary:
    home = Path(settings.churnops_home)
    _fresh_home(home)
    started = time.perf_counter()
    platform = EmbeddedPlatform(settings)
    summary = DemoSummary(stages=platform.stages, home=str(home))
    progress(f"embedded platform in {home} with stages: {', '.join(platform.stages) or 'none'}")

    def report(task_name: str, outcome: Outcome) -> None:
        summary.events_handled += 1
        if outcome.status == "dead_lettered":
            summary.dead_letters += 1
        follow = ", ".join(e.event_type for e in outcome.followups) or "-"
        stage = task_name.split(".")[1]
        name = outcome.event.event_type if outcome.event else "?"
        progress(f"    {stage:<8} {name:<18} -> {follow}")

    total = len(STEPS) + ("monitor" in platform.stages)
    with tempfile.TemporaryDirectory(prefix="churnops-demo-") as tmp:
        for number, step in enumerate(STEPS, 1):
            progress(f"[{number}/{total}] {step.title}")
            platform.drop(_write_step_file(step, Path(tmp)), step.kind)
            platform.run(on_outcome=report)
    if "monitor" in platform.stages:
        progress(f"[{total}/{total}] build the monitoring report over every batch")
        platform.publish(MonitoringRequested.start_chain("demo-monitoring"))
        platform.run(on_outcome=report)
        _monitoring_report(platform, summary)

    _tally(platform.bus.published, summary)
    _estimate_vs_realized(platform, summary)
    _campaigns(platform, summary)
    summary.seconds = round(time.perf_counter() - started, 1)
    return summary


def _tally(events: list[Event], summary: DemoSummary) -> None:
    for event in events:
        match event.event_type:
            case "BatchScored":
                summary.batches_scored += 1
            case "DataRejected":
                summary.rejected += 1
                summary.rejections.append(str(getattr(event, "reason", "")))
            case "PsiBreached":
                summary.psi_breaches += 1
            case "PerformanceDegraded" if getattr(event, "estimated", False):
                summary.estimated_degradations += 1
            case "ModelPromoted":
                summary.retrains += 1
                summary.promotions += 1
                summary.champion_version = str(getattr(event, "model_version", ""))
            case "ModelRejected":
                summary.retrains += 1


def _estimate_vs_realized(platform: EmbeddedPlatform, summary: DemoSummary) -> None:
    """The shifted batch's PR-AUC as estimated before its labels and as realized after."""
    from sqlalchemy import select

    from churnops_common.db.tables import performance_estimates, scoring_runs

    query = (
        select(performance_estimates.c.value, performance_estimates.c.realized)
        .join(
            scoring_runs,
            scoring_runs.c.run_id == performance_estimates.c.scoring_run_id,
        )
        .where(
            performance_estimates.c.metric == "pr_auc",
            scoring_runs.c.input_key == f"new_data/{SHIFTED_BATCH}",
        )
        .order_by(performance_estimates.c.estimated_at)
        .limit(1)
    )
    with platform.runtime.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is not None:
        summary.drifted_pr_auc_estimated = _rounded(row.value)
        summary.drifted_pr_auc_realized = _rounded(row.realized)


def _campaigns(platform: EmbeddedPlatform, summary: DemoSummary) -> None:
    """Whom the retention lists say to contact, and the profit expected from it: each batch's
    latest scoring (a batch rescored by a new champion counts once, with its new list)."""
    from sqlalchemy import select

    from churnops_common.db.tables import retention_campaigns, scoring_runs

    query = (
        select(scoring_runs.c.input_key, retention_campaigns)
        .join(scoring_runs, scoring_runs.c.run_id == retention_campaigns.c.scoring_run_id)
        .order_by(scoring_runs.c.created_at)
    )
    with platform.runtime.engine.connect() as conn:
        latest = {row.input_key: row for row in conn.execute(query)}
    if latest:
        summary.customers_to_contact = sum(int(row.contacted) for row in latest.values())
        summary.campaign_expected_profit = round(
            sum(float(row.expected_profit) for row in latest.values()), 2
        )


def _monitoring_report(platform: EmbeddedPlatform, summary: DemoSummary) -> None:
    """Where the report the demo ended with lies on disk (embedded mode's object store)."""
    from sqlalchemy import select

    from churnops_common.db.tables import monitoring_reports
    from churnops_common.storage.base import parse_uri
    from churnops_common.storage.local import LocalObjectStore

    query = (
        select(monitoring_reports.c.report_uris)
        .where(monitoring_reports.c.status == "done")
        .order_by(monitoring_reports.c.created_at.desc())
        .limit(1)
    )
    with platform.runtime.engine.connect() as conn:
        uris = conn.execute(query).scalar_one_or_none() or []
    index = next((u for u in uris if str(u).endswith("/index.html")), None)
    if index is None:
        return
    store = platform.runtime.store
    if not isinstance(store, LocalObjectStore):
        summary.monitoring_report = str(index)
        return
    bucket, key = parse_uri(str(index))
    objects = store.root / bucket
    summary.monitoring_report = str((objects / key).resolve())
    summary.monitoring_reports = str((objects / "monitoring" / "index.html").resolve())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
