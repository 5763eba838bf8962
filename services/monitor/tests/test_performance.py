"""Labels and labelled batches through the real handlers (embedded platform, SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from sqlalchemy import select

from churnops_common.db.tables import alerts, dead_letters, performance_metrics, segment_metrics
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, ObjectRef
from churnops_common.synthetic import generate

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _land_labels(platform: EmbeddedPlatform, path: Path, frame: pd.DataFrame) -> DataValidated:
    frame.to_csv(path, index=False)
    info = platform.runtime.store.put_file("landing", f"labels/{path.name}", path)
    ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag)
    return DataValidated.start_chain(
        ref.versioned_uri,
        object=ref,
        kind="labels",
        quality_run_id=f"q-{path.stem}",
        rows=len(frame),
        has_target=True,
    )


def _rows(platform: EmbeddedPlatform, table: Any) -> list[Any]:
    with platform.runtime.engine.connect() as conn:
        return list(conn.execute(select(table)))


def test_labels_are_joined_per_model_version(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform(monitor_min_pr_auc=0.99, monitor_min_labelled_rows=50)
    a_inputs = generate(600, seed=3)
    a1 = scored_batch(
        platform,
        tmp_path,
        name="batch-a",
        rows=600,
        seed=3,
        model_version="1",
        created_at=T0,
        inputs=a_inputs,
    )
    a2 = scored_batch(
        platform,
        tmp_path,
        name="batch-a",
        rows=600,
        seed=30,
        skill=0.5,
        model_version="2",
        created_at=T0 + timedelta(days=1),
        inputs=a_inputs,
    )
    b2 = scored_batch(
        platform,
        tmp_path,
        name="batch-b",
        rows=400,
        seed=4,
        model_version="2",
        created_at=T0 + timedelta(days=2),
    )
    labels = pd.concat(
        [
            a_inputs[["customer_id", "churned"]].iloc[:500],
            b2.inputs[["customer_id", "churned"]].iloc[:300],
            pd.DataFrame({"customer_id": [f"X-{i}" for i in range(20)], "churned": 0}),
        ],
        ignore_index=True,
    )
    labels["churned"] = labels["churned"].map({1: "yes", 0: "no"})  # words are fine too
    labels["outcome_date"] = "2026-11-20"
    platform.publish(_land_labels(platform, tmp_path / "labels-1.csv", labels))
    platform.run()

    rows = {r.model_version: r for r in _rows(platform, performance_metrics)}
    assert set(rows) == {"1", "2"}
    assert (rows["1"].rows, rows["1"].unmatched_rows) == (500, 320)
    assert (rows["2"].rows, rows["2"].unmatched_rows) == (800, 20)
    assert rows["1"].source == "labels"
    assert rows["1"].outcome_from.date().isoformat() == "2026-11-20"
    # v1's figures are exactly sklearn's on the rows it scored.
    truth = a_inputs["churned"].iloc[:500].to_numpy()
    scores = a1.predictions["churn_probability"].iloc[:500].to_numpy()
    assert rows["1"].roc_auc == pytest.approx(roc_auc_score(truth, scores))
    assert rows["1"].pr_auc == pytest.approx(average_precision_score(truth, scores))
    # v2 used its own (worse) predictions of batch A, not v1's.
    v2_scores = pd.concat(
        [
            a2.predictions["churn_probability"].iloc[:500],
            b2.predictions["churn_probability"].iloc[:300],
        ]
    ).to_numpy()
    v2_truth = pd.concat([a_inputs["churned"].iloc[:500], b2.inputs["churned"].iloc[:300]])
    assert rows["2"].roc_auc == pytest.approx(roc_auc_score(v2_truth, v2_scores))
    assert sorted(rows["2"].scoring_run_ids) == sorted([a2.run_id, b2.run_id])
    assert sum(b["rows"] for b in rows["2"].calibration) == 800

    # Only the live version (v2 scored last) is reported degraded, and it is alerted.
    degraded = platform.events_of("PerformanceDegraded")
    assert [(e.model_version, e.metric) for e in degraded] == [("2", "pr_auc")]
    assert rows["2"].degraded_metrics[0] == "pr_auc"  # the key metric is reported first
    assert {r.kind for r in _rows(platform, alerts)} == {"PerformanceDegraded"}

    segments = [s for s in _rows(platform, segment_metrics) if s.run_id == rows["1"].run_id]
    by_column = {s.segment_column for s in segments}
    assert {"region", "contract"} <= by_column
    assert "risk_band" not in by_column  # derived from the score, not a population slice
    assert "tenure_months" in by_column  # a key numeric column (the top reason) in buckets
    for column in by_column:
        assert sum(s.rows for s in segments if s.segment_column == column) == 500

    # More labels for the same live version: recorded, but no second retrain request.
    more = b2.inputs[["customer_id", "churned"]].iloc[300:]
    platform.publish(_land_labels(platform, tmp_path / "labels-2.csv", more))
    platform.run()
    assert len(_rows(platform, performance_metrics)) == 3
    assert len(platform.events_of("PerformanceDegraded")) == 1


def test_labelled_batch_gets_metrics_and_segments(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    batch = scored_batch(platform, tmp_path, name="batch-t", rows=800, seed=8, with_target=True)
    unlabelled = scored_batch(platform, tmp_path, name="batch-u", rows=100, seed=9)
    platform.publish(unlabelled.batch_scored(has_target=False))
    platform.publish(batch.batch_scored(has_target=True))
    platform.run()
    [row] = _rows(platform, performance_metrics)
    assert row.source == "batch"
    assert row.source_key == "new_data/batch-t.csv"
    assert row.rows == 800
    assert row.roc_auc == pytest.approx(
        roc_auc_score(batch.inputs["churned"], batch.predictions["churn_probability"])
    )
    assert row.roc_auc > 0.7  # the fake model has skill: thresholds are not met by accident
    assert platform.events_of("PerformanceDegraded") == []
    segments = [s for s in _rows(platform, segment_metrics) if s.run_id == row.run_id]
    assert {s.segment_column for s in segments} >= {"region", "contract", "internet_service"}


def test_bad_labels_are_dead_lettered_with_the_reason(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    scored_batch(platform, tmp_path, name="batch-c", rows=50, seed=5)
    bad = pd.DataFrame({"customer_id": ["C5-0", "C5-1"], "churned": ["yes", "maybe"]})
    platform.publish(_land_labels(platform, tmp_path / "labels-bad.csv", bad))
    outcomes: list[str] = []
    platform.run(on_outcome=lambda _t, o: outcomes.append(o.status))
    assert outcomes == ["dead_lettered"]
    [letter] = _rows(platform, dead_letters)
    assert "outside the target vocabulary" in letter.error and "maybe" in letter.error


def test_other_kinds_and_unscored_ids_are_ignored(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    event = _land_labels(
        platform,
        tmp_path / "labels-x.csv",
        pd.DataFrame({"customer_id": ["nobody"], "churned": [1]}),
    )
    platform.publish(event)
    platform.publish(event.model_copy(update={"event_id": "other", "kind": "new_data"}))
    platform.run()
    assert _rows(platform, performance_metrics) == []


def test_degraded_is_sent_again_when_its_publish_failed(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    from churnops_monitor.handlers import on_data_validated

    platform = make_platform(monitor_min_pr_auc=0.99, monitor_min_labelled_rows=50)
    batch = scored_batch(platform, tmp_path, name="batch-r", rows=300, seed=6)
    labels = batch.inputs[["customer_id", "churned"]]
    event = _land_labels(platform, tmp_path / "labels-r.csv", labels)
    first = on_data_validated(event, platform.runtime)
    assert [e.event_type for e in first] == ["PerformanceDegraded"]
    # The flag is committed; the dispatcher's publish then fails and the task is retried:
    # the retry derives the same event again (same id: a duplicate is dropped downstream).
    retry = on_data_validated(event, platform.runtime)
    assert [e.event_id for e in retry] == [first[0].event_id]
    # Another labels file in another chain for the same version is not reported again.
    other = _land_labels(platform, tmp_path / "labels-r2.csv", labels.iloc[:200])
    assert on_data_validated(other, platform.runtime) == []
