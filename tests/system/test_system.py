"""System scenarios on the stack as local processes: lifecycle, faults, bad input, latency.

The scenarios run in file order on one shared stack (started once: see conftest.py), so the
two trainings of the lifecycle and the one of the concurrent-retrain scenario are the only ones.
Each asserts counts in the monitoring tables and objects in the buckets; the figures go to one
table printed at the end. Run with `make system-test`.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from churnops_common.events import RetrainRequested, SweepRequested
from churnops_common.report_names import quality_folder
from tests.system.figures import FIGURES, NUMBERS, percentile
from tests.system.harness import LocalStack, children_of
from tests.system.inputs import bad_inputs, batch_csv, batch_frame

pytestmark = [pytest.mark.system, pytest.mark.services, pytest.mark.timeout(600)]

TRAINING_ROWS = 6000
BATCH_ROWS = 2000
KILL_ROWS = 400_000  # ~37 MB: seconds of scoring, so the kill lands mid-batch
BURST_FILES = 30
LATENCY_BATCHES = 20
LATENCY_ROWS = 10_000

SCORE_TASK = "churnops.scorer.on_data_validated"
LANDED_TASK = "churnops.quality.on_data_landed"
RETRAIN_TASK = "churnops.trainer.on_retrain_requested"
REPORT_TASK = "churnops.quality.on_quality_report_requested"


# ---- observations ------------------------------------------------------------------------------
def runs_for(stack: LocalStack, key: str) -> int:
    return stack.count("SELECT count(*) FROM monitoring.scoring_runs WHERE input_key = :k", k=key)


def quality_runs_for(stack: LocalStack, key: str) -> int:
    return stack.count("SELECT count(*) FROM monitoring.quality_runs WHERE object_key = :k", k=key)


def predictions_for(stack: LocalStack, key: str) -> list[str]:
    stem = key.rsplit(".", 1)[0] + "/"
    bucket = stack.settings.minio_predictions_bucket
    return [o for o in stack.objects(bucket, stem) if o.endswith("/predictions.parquet")]


def promotions(stack: LocalStack, decision: str = "promoted") -> int:
    return stack.count(
        "SELECT count(*) FROM monitoring.model_promotions WHERE decision = :d", d=decision
    )


def champion_version(stack: LocalStack) -> str:
    [row] = stack.rows(
        "SELECT challenger_version FROM monitoring.model_promotions "
        "WHERE decision = 'promoted' ORDER BY decided_at DESC LIMIT 1"
    )
    return str(row[0])


def chain_of(stack: LocalStack, key: str) -> str:
    """The correlation id of the chain a landed file started (from its quality run)."""
    [row] = stack.rows(
        "SELECT correlation_id FROM monitoring.quality_runs WHERE object_key = :k", k=key
    )
    return str(row[0])


def ledger_row(stack: LocalStack, task: str, correlation_id: str) -> dict[str, object] | None:
    rows = stack.rows(
        "SELECT status, attempts, followups FROM monitoring.processed_events "
        "WHERE task_name = :t AND correlation_id = :c",
        t=task,
        c=correlation_id,
    )
    assert len(rows) <= 1, rows
    return dict(rows[0]._mapping) if rows else None


def wait_scored(stack: LocalStack, keys: list[str], timeout: float) -> float:
    return stack.wait_until(
        lambda: all(runs_for(stack, k) >= 1 for k in keys),
        timeout,
        f"{len(keys)} scoring run(s) ({keys[0]}...)",
    )


def pr_auc_estimate(stack: LocalStack, key: str) -> dict[str, object] | None:
    """The first estimate of PR-AUC for a batch: value, band, whether it raised a degradation,
    and the realized value once labels landed."""
    rows = stack.rows(
        "SELECT e.value, e.upper, e.degraded_emitted, e.realized"
        " FROM monitoring.performance_estimates e JOIN monitoring.scoring_runs r"
        " ON r.run_id = e.scoring_run_id WHERE r.input_key = :k AND e.metric = 'pr_auc'"
        " ORDER BY e.estimated_at LIMIT 1",
        k=key,
    )
    return dict(rows[0]._mapping) if rows else None


def assert_scored_once(stack: LocalStack, key: str) -> None:
    assert quality_runs_for(stack, key) == 1, key
    assert runs_for(stack, key) == 1, key
    assert len(predictions_for(stack, key)) == 1, key


def assert_retention_decides(stack: LocalStack, key: str) -> None:
    """The batch's retention list: by expected profit, with the cut, and its campaign on record."""
    import io

    import pandas as pd

    [predictions] = predictions_for(stack, key)
    bucket = stack.settings.minio_predictions_bucket
    listed = stack.store.get_bytes(
        bucket, predictions.replace("predictions.parquet", "retention.csv")
    )
    retention = pd.read_csv(io.BytesIO(listed))
    assert {"expected_profit", "contact", "value"} <= set(retention.columns), key
    assert retention["expected_profit"].is_monotonic_decreasing
    contact = retention["contact"].astype(bool)
    assert contact.any() and (retention["expected_profit"][contact] > 0).all()
    [campaign] = stack.rows(
        "SELECT c.contacted, c.expected_profit FROM monitoring.retention_campaigns c"
        " JOIN monitoring.scoring_runs s ON s.run_id = c.scoring_run_id WHERE s.input_key = :k",
        k=key,
    )
    assert campaign.contacted >= contact.sum() and campaign.expected_profit > 0


# ---- 1. lifecycle ------------------------------------------------------------------------------
def test_lifecycle(stack: LocalStack, tmp_path: Path) -> None:
    """Train, score three batches; a shifted batch without labels is estimated degraded at
    once; drift, retrain, promote the better model, rescore; the shifted batch's labels land
    and its realized PR-AUC is stored beside the estimate."""
    train = batch_csv(tmp_path, "train.csv", TRAINING_ROWS, seed=1, target=True)
    stack.upload(train, "training/train-0001.csv")
    stack.wait_until(lambda: promotions(stack) == 1, 300, "the first champion")
    first = champion_version(stack)

    keys = [f"new_data/batch-000{i}.csv" for i in (1, 2, 3)]
    for i, key in enumerate(keys, 1):
        stack.upload(batch_csv(tmp_path, f"b{i}.csv", BATCH_ROWS, seed=10 + i), key)
    wait_scored(stack, keys, 180)
    for key in keys:
        assert_scored_once(stack, key)
        assert_retention_decides(stack, key)

    # Established customers, outcomes unknown: fewer churners to find, known before any label.
    shifted = "new_data/batch-0004-shifted.csv"
    stack.upload(batch_csv(tmp_path, "s.csv", TRAINING_ROWS, seed=15, loyalty=1.0), shifted)
    stack.wait_until(
        lambda: bool((pr_auc_estimate(stack, shifted) or {}).get("degraded_emitted")),
        240,
        "the shifted batch's estimated degradation",
    )

    drifted = "new_data/batch-0005-drifted.csv"
    path = batch_csv(tmp_path, "d.csv", TRAINING_ROWS, seed=15, drift=1.0, target=True)
    stack.upload(path, drifted)
    stack.wait_until(lambda: promotions(stack) == 2, 400, "the retrained model's promotion")
    second = champion_version(stack)
    assert second != first
    # The latest batch is rescored with the new champion: one run per model version.
    stack.wait_until(
        lambda: (
            stack.count(
                "SELECT count(*) FROM monitoring.scoring_runs WHERE input_key = :k AND"
                " model_version = :v",
                k=drifted,
                v=second,
            )
            == 1
        ),
        180,
        "the rescore with the new champion",
    )
    stack.wait_idle()

    # The shifted batch's outcomes land: the realized PR-AUC is stored beside its estimate.
    labels = batch_frame(TRAINING_ROWS, 15, target=True, loyalty=1.0)[["customer_id", "churned"]]
    labels.to_csv(tmp_path / "labels.csv", index=False)
    stack.upload(tmp_path / "labels.csv", "labels/labels-0004-shifted.csv")
    stack.wait_until(
        lambda: (pr_auc_estimate(stack, shifted) or {}).get("realized") is not None,
        180,
        "the shifted batch's realized PR-AUC",
    )
    stack.wait_idle()
    estimate = pr_auc_estimate(stack, shifted)
    assert estimate is not None

    [breach] = stack.rows(
        "SELECT run_id, psi_breached, has_target FROM monitoring.quality_runs "
        "WHERE object_key = :k",
        k=drifted,
    )
    assert breach.psi_breached and breach.has_target
    breached = stack.count(
        "SELECT count(*) FROM monitoring.feature_psi WHERE run_id = :r AND breached",
        r=breach.run_id,
    )
    assert breached >= 1
    [better] = stack.rows(
        "SELECT challenger_pr_auc, champion_pr_auc, champion_version FROM "
        "monitoring.model_promotions WHERE challenger_version = :v",
        v=second,
    )
    assert better.champion_version == first
    assert better.challenger_pr_auc > better.champion_pr_auc  # compared on the same holdout
    assert runs_for(stack, drifted) == 2 and len(predictions_for(stack, drifted)) == 2
    trainings = stack.count("SELECT count(*) FROM monitoring.training_runs WHERE status = 'done'")
    assert trainings == 2  # the first training set, then one retrain for the drift
    # Both the shifted and the drifted batch moved the inputs.
    assert stack.count("SELECT count(*) FROM monitoring.alerts WHERE kind = 'PsiBreached'") == 2
    assert stack.count("SELECT count(*) FROM monitoring.alerts WHERE kind = 'ModelPromoted'") == 2
    reports = stack.settings.minio_reports_bucket
    folder = quality_folder(drifted, breach.run_id)  # named after the file
    assert f"{folder}/report.html" in stack.objects(reports, folder)
    assert f"{folder}/evidently-drift.html" in stack.objects(reports, folder)
    # The labelled drifted batch: what the profit cut realized, beside its metrics row.
    [realized] = stack.rows(
        "SELECT r.profit, r.profit_top10, r.profit_p50, r.contacted FROM"
        " monitoring.realized_profits r JOIN monitoring.performance_metrics p"
        " ON p.run_id = r.run_id WHERE p.source_key = :k AND p.model_version = :v",
        k=drifted,
        v=first,
    )
    assert realized.contacted > 0
    FIGURES["lifecycle"] = (
        f"champion v{first} -> v{second} (PR-AUC {better.champion_pr_auc:.3f} -> "
        f"{better.challenger_pr_auc:.3f} on the same holdout); {breached} features breached PSI;"
        f" shifted batch PR-AUC estimated {estimate['value']:.3f} before its labels, realized"
        f" {estimate['realized']:.3f}"
    )


# ---- 6. concurrent retrains (run early: it trains, and training is the slow part) ---------------
def test_concurrent_retrains_give_one_training(stack: LocalStack) -> None:
    """Two RetrainRequested(manual) at once, with two trainer worker processes, train once.

    The trainer takes a Postgres advisory lock per model before it trains (guard.py); a second
    trigger that finds it held is recorded as skipped, not queued behind it.
    """
    assert len(stack.workers("trainer")) == 2
    stack.wait_idle()
    decisions_before = stack.count("SELECT count(*) FROM monitoring.model_promotions")
    events = [
        RetrainRequested.start_chain(
            f"system-test-manual-{uuid.uuid4()}", reason="manual", detail=f"system test request {n}"
        )
        for n in (1, 2)
    ]
    for event in events:
        stack.publish(event)
    ids = [e.correlation_id for e in events]
    stack.wait_until(
        lambda: all(
            (ledger_row(stack, RETRAIN_TASK, c) or {}).get("status") == "done" for c in ids
        ),
        400,
        "both retrain requests to be handled",
    )
    stack.wait_idle()
    runs = stack.rows(
        "SELECT status, detail FROM monitoring.training_runs WHERE correlation_id IN (:a, :b) "
        "ORDER BY status",
        a=ids[0],
        b=ids[1],
    )
    assert [r.status for r in runs] == ["done", "skipped"], runs
    assert "another training of this model is running" in runs[1].detail
    assert stack.count("SELECT count(*) FROM monitoring.model_promotions") == decisions_before + 1
    handled_by = {
        p.name
        for p in stack.workers("trainer")
        if RETRAIN_TASK in p.log.read_text(errors="replace")
    }
    FIGURES["concurrent retrains"] = (
        f"2 requests on {sorted(handled_by)} -> 1 training, 1 skipped; "
        f"{promotions(stack)} promotions, {promotions(stack, 'rejected')} rejections so far"
    )


# ---- 4. burst -------------------------------------------------------------------------------
def test_burst_of_files_and_a_duplicate_notification(stack: LocalStack, tmp_path: Path) -> None:
    """30 files at once on two scorer workers: 30 outputs, 30 runs; a repeated notification of
    the same object is handled once."""
    stack.wait_idle()
    keys = [f"new_data/burst/file-{n:02d}.csv" for n in range(BURST_FILES)]
    infos = [
        stack.upload(batch_csv(tmp_path, f"burst{n}.csv", 300, seed=100 + n), key, notify=False)
        for n, key in enumerate(keys)
    ]
    started = time.monotonic()
    for key, info in zip(keys, infos, strict=True):
        stack.notify(key, info.etag, info.size)
    stack.notify(keys[0], infos[0].etag, infos[0].size)  # MinIO delivers at least once
    wait_scored(stack, keys, 300)
    seconds = time.monotonic() - started
    stack.wait_idle(300)  # the 30 quality reports are rendered after the predictions
    for key in keys:
        assert_scored_once(stack, key)
    assert (
        stack.count(
            "SELECT count(*) FROM monitoring.processed_events WHERE task_name = :t "
            "AND idempotency_key LIKE '%/new_data/burst/%'",
            t=LANDED_TASK,
        )
        == BURST_FILES
    )
    assert (
        stack.count(
            "SELECT count(*) FROM monitoring.scoring_runs WHERE input_key LIKE 'new_data/burst/%'"
        )
        == BURST_FILES
    )
    quality_log = "\n".join(p.log.read_text(errors="replace") for p in stack.workers("quality"))
    assert f"skipped landing/{keys[0]}@{infos[0].etag}" in quality_log  # the duplicate
    per_scorer = {
        p.name: sum(
            "new_data/burst/" in line and " scored " in line
            for line in p.log.read_text(errors="replace").splitlines()
        )
        for p in stack.workers("scorer")
    }
    assert sum(per_scorer.values()) == BURST_FILES
    assert all(per_scorer.values()), per_scorer  # both scorers took a share
    FIGURES["burst"] = (
        f"{BURST_FILES} files + 1 duplicate notification -> {BURST_FILES} outputs, "
        f"{BURST_FILES} runs in {seconds:.1f}s; split {per_scorer}"
    )


# ---- 2. worker killed ----------------------------------------------------------------------
def test_scorer_killed_mid_batch(stack: LocalStack, tmp_path: Path) -> None:
    """`kill -9` of the scorer process running a batch: the batch completes exactly once.

    What is killed: the prefork pool process that runs the task (found with `celery inspect
    active` and checked to be a child of a scorer worker), while the ledger row of
    churnops.scorer.on_data_validated for this file says 'running' and no output exists yet.
    The worker's main process sees the child die and, with task_acks_late and
    task_reject_on_worker_lost, puts the message back on the queue at once; its Postgres
    connection died with it, which frees the ledger's advisory lock. Killing the whole worker
    (main process included) would instead leave the message unacked in Redis until the
    visibility timeout (TASK_VISIBILITY_TIMEOUT_S, 4 h by default): that redelivery is not
    exercised here.
    """
    stack.wait_idle()
    key = "new_data/kill/large-batch.csv"
    stack.upload(batch_csv(tmp_path, "large.csv", KILL_ROWS, seed=77), key)
    stack.wait_until(lambda: quality_runs_for(stack, key) == 1, 180, "the large batch's check")
    chain = chain_of(stack, key)
    stack.wait_until(
        lambda: (ledger_row(stack, SCORE_TASK, chain) or {}).get("status") == "running",
        120,
        "the scorer to start the large batch",
        poll=0.05,  # the batch runs for seconds: act within a fraction of one
    )
    running: list[dict[str, object]] = []

    def found() -> bool:  # a busy worker may miss one inspect round: ask again
        running[:] = [t for t in stack.active_tasks("scorer") if t["name"] == SCORE_TASK]
        return bool(running)

    stack.wait_until(found, 30, "celery inspect to show the running batch", poll=0.05)
    [task] = running
    pid, worker = int(str(task["worker_pid"])), stack.procs[str(task["hostname"]).split("@")[0]]
    assert pid in children_of(worker.popen.pid)  # a pool process of that scorer
    assert runs_for(stack, key) == 0 and not predictions_for(stack, key)  # mid-batch
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    wait_scored(stack, [key], 300)
    recovered = time.monotonic() - killed
    stack.wait_idle()
    assert_scored_once(stack, key)
    row = ledger_row(stack, SCORE_TASK, chain)
    assert row is not None and row["status"] == "done" and row["attempts"] == 2
    assert ledger_row(stack, "churnops.monitor.on_batch_scored", chain) is not None
    assert "signal 9" in worker.log.read_text(errors="replace")
    assert worker.popen.poll() is None and {p.name for p in stack.workers()} <= stack.ping()
    FIGURES["worker killed"] = (
        f"pool pid {pid} of {worker.name} killed mid-batch ({KILL_ROWS} rows); redelivered and "
        f"finished {recovered:.1f}s later; 1 output, 1 run row, ledger attempts 2"
    )


# ---- 3. notification lost ---------------------------------------------------------------------
def test_notification_lost_across_redis_restart(stack: LocalStack, tmp_path: Path) -> None:
    """Redis restarted between an upload and its notification (which never comes): the workers
    and the bridge reconnect, and the sweep the Airflow DAG schedules finds the object."""
    stack.wait_idle()
    lost, after = "new_data/lost/while-redis-was-down.csv", "new_data/lost/after-restart.csv"
    stack.stop_redis()
    stack.upload(batch_csv(tmp_path, "lost.csv", BATCH_ROWS, seed=31), lost, notify=False)
    time.sleep(3)  # every client has noticed the broker is gone
    stack.start_redis()
    reconnect = stack.wait_until(
        lambda: {p.name for p in stack.workers()} <= stack.ping(1.0), 120, "workers to reconnect"
    )
    stack.upload(batch_csv(tmp_path, "after.csv", BATCH_ROWS, seed=32), after)
    wait_scored(stack, [after], 120)  # the bridge reconnected too
    assert quality_runs_for(stack, lost) == 0  # nothing announced the lost one

    sweep = SweepRequested.start_chain(f"system-test-sweep-{uuid.uuid4()}")
    stack.publish(sweep)
    wait_scored(stack, [lost], 120)
    stack.wait_idle()
    assert_scored_once(stack, lost)
    assert_scored_once(stack, after)
    row = ledger_row(stack, "churnops.quality.on_sweep_requested", sweep.correlation_id)
    assert row == {"status": "done", "attempts": 1, "followups": 1}  # exactly the lost object
    FIGURES["notification lost"] = (
        f"Redis restarted, workers back in {reconnect:.1f}s; the sweep re-announced 1 object; "
        "0 lost"
    )


# ---- 5. bad input ----------------------------------------------------------------------------
def test_bad_input_is_rejected_quarantined_and_survived(stack: LocalStack, tmp_path: Path) -> None:
    """Every kind of bad input in the brief is rejected with its specific reason and copied to
    quarantine (the original stays); malformed events go to dead_letters once; workers live.

    The stack runs with QUALITY_REJECT_UNSEEN_CATEGORIES=true (conftest.py) so unseen categories
    reject the file; the default only warns. The huge-file case uses QUALITY_MAX_FILE_MB.
    """
    stack.wait_idle()
    good = batch_frame(200, seed=41)
    labels = batch_frame(200, seed=42, target=True)[["customer_id", "churned"]]
    cases = bad_inputs(good, labels, stack.settings.quality_max_file_mb)
    for n, case in enumerate(cases):
        path = tmp_path / f"bad{n}.csv"
        case.write(path)
        stack.upload(path, case.key)
    poison = _poison_messages(stack)
    healthy = "new_data/bad/after-the-storm.csv"
    stack.upload(batch_csv(tmp_path, "fine.csv", BATCH_ROWS, seed=43), healthy)
    stack.wait_until(
        lambda: all(quality_runs_for(stack, c.key) == 1 for c in cases), 240, "every verdict"
    )
    wait_scored(stack, [healthy], 120)  # the workers carried on
    stack.wait_idle()
    time.sleep(3)  # a retry storm would show as growing dead letters or ledger attempts
    stack.wait_idle()

    for case in cases:
        _assert_rejected(stack, case.case, case.key, case.expected)
    for marker, task in poison.items():
        rows = stack.rows(
            "SELECT task_name, error, attempts FROM monitoring.dead_letters WHERE payload LIKE :m",
            m=f"%{marker}%",
        )
        assert len(rows) == 1, (marker, rows)
        assert rows[0].task_name == task and rows[0].attempts == 1
        assert rows[0].error.startswith("invalid event payload")
    assert {p.name for p in stack.workers()} <= stack.ping()
    assert not stack.unexpectedly_down()
    assert_scored_once(stack, healthy)
    FIGURES["bad input"] = (
        f"{len(cases)} bad files rejected with their reason and quarantined; "
        f"{len(poison)} malformed events dead-lettered once; workers alive"
    )


def _poison_messages(stack: LocalStack) -> dict[str, str]:
    """Three malformed messages: a broken event, the wrong event type, not JSON at all."""
    markers = {
        f"poison-{n}-{uuid.uuid4().hex[:8]}": task
        for n, task in enumerate((LANDED_TASK, SCORE_TASK, "churnops.monitor.on_batch_scored"))
    }
    (m1, t1), (m2, t2), (m3, t3) = markers.items()
    stack.send_raw(t1, {"event_type": "DataLanded", "event_id": m1, "object": "not an object"})
    wrong_type = {
        "event_type": "DataLanded",
        "event_id": m2,
        "object": {"bucket": "landing", "key": "new_data/x.csv", "etag": m2},
        "kind": "new_data",
    }
    stack.send_raw(t2, wrong_type)
    stack.send_raw(t3, f"{{not json {m3}")
    return markers


def _assert_rejected(stack: LocalStack, case: str, key: str, expected: tuple[str, ...]) -> None:
    [run] = stack.rows(
        "SELECT run_id, status, reason, etag, bucket FROM monitoring.quality_runs "
        "WHERE object_key = :k",
        k=key,
    )
    assert run.status == "rejected", (case, run)
    for fragment in expected:
        assert fragment in run.reason, (case, fragment, run.reason)
    landing, reports = stack.settings.minio_landing_bucket, stack.settings.minio_reports_bucket
    assert stack.store.stat(landing, key) is not None, case  # the original stays
    name = key.rsplit("/", 1)[-1]
    quarantined = set(stack.objects(reports, f"quarantine/{run.run_id}/"))
    assert quarantined == {
        f"quarantine/{run.run_id}/{name}",
        f"quarantine/{run.run_id}/reason.json",
    }
    reason = json.loads(stack.store.get_bytes(reports, f"quarantine/{run.run_id}/reason.json"))
    assert reason["reason"] == run.reason and reason["object"] == f"s3://{landing}/{key}"
    assert runs_for(stack, key) == 0, case
    alert_key = f"DataRejected:{run.bucket}/{key}@{run.etag}"
    assert (
        stack.count("SELECT count(*) FROM monitoring.alerts WHERE alert_key = :k", k=alert_key) == 1
    ), case


# ---- 7. latency -----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:HarfBuzz-Subset:DeprecationWarning")  # WeasyPrint, in-process
def test_latency_upload_to_predictions(stack: LocalStack, tmp_path: Path) -> None:
    """Upload to predictions written, one 10k-row batch at a time, beside the in-process
    compute of the same files (the quality check and the scoring as plain functions).

    Each batch lands on a settled platform, as when the report was rendered before the verdict:
    the previous batch's report (now rendered after its predictions) is done first. Back to
    back, a check can wait for a pool process busy with a report (the low priority orders only
    waiting messages); the burst scenario shows that load.
    """
    stack.wait_idle()
    paths = [
        batch_csv(tmp_path, f"lat{n}.csv", LATENCY_ROWS, seed=500 + n)
        for n in range(LATENCY_BATCHES)
    ]
    end_to_end, to_validated, scorer_seconds = [], [], []
    for n, path in enumerate(paths):
        key = f"new_data/latency/batch-{n:02d}.csv"
        stack.wait_idle(settle=0.5)  # the previous batch's report included
        info = stack.upload(path, key, notify=False)
        landed = datetime.now(UTC)  # the moment MinIO would notify
        stack.notify(key, info.etag, info.size)
        wait_scored(stack, [key], 120)
        [row] = stack.rows(
            "SELECT s.created_at AS scored, s.duration_s, q.created_at AS checked FROM "
            "monitoring.scoring_runs s JOIN monitoring.quality_runs q ON q.object_key = "
            "s.input_key WHERE s.input_key = :k",
            k=key,
        )
        end_to_end.append((row.scored - landed).total_seconds())
        to_validated.append((row.checked - landed).total_seconds())
        scorer_seconds.append(row.duration_s)
    stack.wait_idle()
    for n in range(LATENCY_BATCHES):
        _assert_reported_once(stack, f"new_data/latency/batch-{n:02d}.csv")
    from tests.system.compute import in_process_seconds

    compute = in_process_seconds(stack, paths)
    total = [c.total_s for c in compute]
    e2e50, e2e95 = percentile(end_to_end, 0.5), percentile(end_to_end, 0.95)
    c50, c95 = percentile(total, 0.5), percentile(total, 0.95)
    hop = [e - v for e, v in zip(end_to_end, to_validated, strict=True)]
    assert all(s > 0 for s in end_to_end)
    report50 = percentile([c.report_s for c in compute], 0.5)
    NUMBERS.update(
        latency_p50_s=round(e2e50, 4),
        latency_p95_s=round(e2e95, 4),
        compute_p50_s=round(c50, 4),
        compute_p95_s=round(c95, 4),
        overhead_p50_s=round(e2e50 - c50, 4),
        overhead_p95_s=round(e2e95 - c95, 4),
        report_p50_s=round(report50, 4),
    )
    FIGURES["latency upload->predictions p50/p95 (s)"] = f"{e2e50:.2f} / {e2e95:.2f}"
    FIGURES["in-process compute p50/p95 (s)"] = f"{c50:.2f} / {c95:.2f} (check + score)"
    FIGURES["platform overhead p50/p95 (s)"] = f"{e2e50 - c50:.2f} / {e2e95 - c95:.2f}"
    FIGURES["  the quality report p50 (s)"] = (
        f"{report50:.2f} (HTML plots + PDF; rendered after the verdict, off this path)"
    )
    FIGURES["  upload->quality row p50 vs in-process"] = (
        f"{percentile(to_validated, 0.5):.2f} vs check"
        f" {percentile([c.check_s for c in compute], 0.5):.2f}"
    )
    FIGURES["  quality row->scoring row p50 vs in-process"] = (
        f"{percentile(hop, 0.5):.2f} vs score {percentile([c.score_s for c in compute], 0.5):.2f}"
        f" (scorer handler duration_s p50 {percentile(scorer_seconds, 0.5):.2f})"
    )


def _assert_reported_once(stack: LocalStack, key: str) -> None:
    """The quality report of a file was rendered by one report task and recorded on its run."""
    [run] = stack.rows(
        "SELECT run_id, report_uri FROM monitoring.quality_runs WHERE object_key = :k", k=key
    )
    folder = quality_folder(key, run.run_id)
    assert run.report_uri == f"s3://{stack.settings.minio_reports_bucket}/{folder}/report.html"
    reports = stack.objects(stack.settings.minio_reports_bucket, f"{folder}/")
    assert reports.count(f"{folder}/report.html") == 1, reports
    handled = stack.count(
        "SELECT count(*) FROM monitoring.processed_events WHERE task_name = :t "
        "AND idempotency_key = :k AND status = 'done'",
        t=REPORT_TASK,
        k=f"quality-report:{run.run_id}",
    )
    assert handled == 1, key


# ---- totals ---------------------------------------------------------------------------------
def test_totals_nothing_lost_nothing_duplicated(stack: LocalStack) -> None:
    """Over every scenario: each accepted batch of new data has predictions; nothing twice."""
    stack.wait_idle()
    lost = stack.count(
        "SELECT count(*) FROM monitoring.quality_runs q WHERE q.status = 'accepted' AND "
        "q.kind = 'new_data' AND NOT EXISTS (SELECT 1 FROM monitoring.scoring_runs s WHERE "
        "s.input_key = q.object_key AND s.input_etag = q.etag)"
    )
    runs = stack.count("SELECT count(*) FROM monitoring.scoring_runs")
    outputs = len(
        [
            o
            for o in stack.objects(stack.settings.minio_predictions_bucket)
            if o.endswith("/predictions.parquet")
        ]
    )
    checked_twice = stack.count(
        "SELECT count(*) FROM (SELECT 1 FROM monitoring.quality_runs GROUP BY bucket, object_key,"
        " etag HAVING count(*) > 1) AS twice"
    )
    duplicated = (outputs - runs) + checked_twice
    events = stack.count("SELECT count(*) FROM monitoring.processed_events")
    FIGURES["events handled (ledger rows)"] = str(events)
    FIGURES["dead letters"] = str(stack.count("SELECT count(*) FROM monitoring.dead_letters"))
    checked = stack.count("SELECT count(*) FROM monitoring.quality_runs")
    rejected = stack.count("SELECT count(*) FROM monitoring.quality_runs WHERE status = 'rejected'")
    FIGURES["files checked / rejected"] = f"{checked} / {rejected}"
    FIGURES["scoring runs / rows scored"] = (
        f"{runs} / {stack.count('SELECT coalesce(sum(rows), 0) FROM monitoring.scoring_runs')}"
    )
    FIGURES["lost / duplicated"] = f"{lost} / {duplicated}"
    NUMBERS.update(events_lost=lost, events_duplicated=duplicated, events_handled=events)
    assert lost == 0
    assert duplicated == 0
    # The only dead letters are the malformed events the bad-input scenario planted.
    unexpected = stack.rows(
        "SELECT task_name, error FROM monitoring.dead_letters WHERE payload NOT LIKE '%poison-%'"
    )
    assert not unexpected, [(r.task_name, r.error[:300]) for r in unexpected]
