"""The Evidently monitoring report built from scored batches (the predictions contract)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from churnops_common.db.tables import monitoring_reports
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import DataValidated, ModelPromoted, MonitoringRequested, ObjectRef
from churnops_common.synthetic import generate


def _report_row(platform: EmbeddedPlatform) -> Any:
    with platform.runtime.engine.connect() as conn:
        [row] = conn.execute(select(monitoring_reports)).all()
    return row


def test_no_predictions_yet_skips_with_a_reason(
    make_platform: Callable[..., EmbeddedPlatform],
) -> None:
    platform = make_platform()
    platform.publish(MonitoringRequested.start_chain("weekly-1"))
    platform.run()
    row = _report_row(platform)
    assert (row.status, row.reason) == ("skipped", "no predictions yet")
    # No report is built; the index of all reports lists the skip with its reason.
    [index] = platform.runtime.store.list_objects("reports")
    assert index.key == "monitoring/index.html"
    html = platform.runtime.store.get_bytes("reports", index.key).decode()
    assert "skipped: no predictions yet" in html


def test_report_from_scored_batches_against_the_baseline(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    import mlflow

    platform = make_platform()
    store, now = platform.runtime.store, datetime.now(UTC)
    baseline = tmp_path / "baseline.parquet"
    generate(1500, seed=1).drop(columns=["churned"]).to_parquet(baseline, index=False)
    store.put_file("models", "baselines/v1/baseline_sample.parquet", baseline)
    # An old batch (outside the window), then a drifted, labelled one this week.
    scored_batch(
        platform, tmp_path, name="batch-old", rows=500, seed=2, created_at=now - timedelta(days=30)
    )
    scored_batch(
        platform,
        tmp_path,
        name="batch-new",
        rows=1000,
        seed=3,
        drift=1.0,
        with_target=True,
        created_at=now - timedelta(hours=1),
    )
    platform.publish(MonitoringRequested.start_chain("weekly-2"))
    platform.run()

    row = _report_row(platform)
    assert row.status == "done"
    assert (row.scoring_runs, row.current_rows, row.labelled_rows) == (1, 1000, 1000)
    assert row.reference_source == "baseline"
    assert row.reference_uri == "s3://models/baselines/v1/baseline_sample.parquet"
    names = sorted(uri.rsplit("/", 1)[1] for uri in row.report_uris)
    assert names == [
        "classification.html",
        "data_drift.html",
        "index.html",
        "prediction_drift.html",
        "profit.html",
        "summary.json",
        "trends.html",
    ]
    day = f"{now:%Y-%m-%d}"
    for uri in row.report_uris:
        key = uri.removeprefix("s3://reports/")
        assert key.startswith(f"monitoring/{day}/")
        if key.endswith("profit.html"):  # no labels file or labelled batch was evaluated
            assert b"No labelled batch yet" in store.get_bytes("reports", key)
            continue
        assert store.stat("reports", key).size > 1000
    html = store.get_bytes(
        "reports",
        next(u for u in row.report_uris if u.endswith("data_drift.html")).removeprefix(
            "s3://reports/"
        ),
    )
    assert b"region" in html and b"monthly_charges" in html
    # The over-time page plots what the dashboards show (here, the batch that was scored).
    trends = store.get_bytes(
        "reports", next(u for u in row.report_uris if u.endswith("trends.html"))[13:]
    ).decode()
    assert "Mean churn probability" in trends and "data:image/png;base64," in trends
    metrics = row.metrics
    assert metrics["data_drift.DriftedColumnsCount.share"] > 0.2  # drift 1.0 moves most columns
    assert 0.5 < metrics["performance.roc_auc"] <= 1
    assert "classification.RocAuc" in metrics
    assert "prediction_drift.ValueDrift.churn_probability" in metrics

    mlflow.set_tracking_uri(platform.settings.mlflow_uri())
    run = mlflow.get_run(row.mlflow_run_id)
    assert run.info.run_name == "monitoring_metrics"
    assert mlflow.get_experiment(run.info.experiment_id).name == "churnops-monitoring"
    assert run.data.metrics["performance.roc_auc"] == metrics["performance.roc_auc"]
    assert run.data.params["reference_source"] == "baseline"


def test_without_a_baseline_the_earliest_batch_is_the_reference(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    now = datetime.now(UTC)
    first = scored_batch(
        platform, tmp_path, name="batch-1", rows=400, seed=4, created_at=now - timedelta(days=3)
    )
    second = scored_batch(
        platform,
        tmp_path,
        name="batch-2",
        rows=400,
        seed=5,
        drift=0.5,
        created_at=now - timedelta(days=1),
    )
    # Outcomes of 200 of batch 2's customers arrive as a labels file.
    labels = tmp_path / "labels.csv"
    second.inputs[["customer_id", "churned"]].iloc[:200].to_csv(labels, index=False)
    info = platform.runtime.store.put_file("landing", "labels/labels.csv", labels)
    ref = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag)
    platform.publish(
        DataValidated.start_chain(
            "labels", object=ref, kind="labels", quality_run_id="q", rows=200, has_target=True
        )
    )
    since = now - timedelta(days=2)
    platform.publish(MonitoringRequested.start_chain("adhoc", since=since))
    platform.run()
    row = _report_row(platform)
    assert row.status == "done"
    assert row.reference_source == "earliest_batch"
    assert row.reference_uri == f"s3://predictions/{first.predictions_ref.key}"
    assert (row.current_rows, row.labelled_rows) == (400, 200)
    names = sorted(uri.rsplit("/", 1)[1] for uri in row.report_uris)
    assert names == [
        "classification.html",
        "data_drift.html",
        "index.html",
        "prediction_drift.html",
        "profit.html",
        "summary.json",
        "trends.html",
    ]
    # The labels file's realized profit sits beside its metrics row, and the report plots it.
    from churnops_common.db.tables import performance_metrics, realized_profits

    with platform.runtime.engine.connect() as conn:
        (metrics_row,) = conn.execute(select(performance_metrics)).all()
        (profit_row,) = conn.execute(select(realized_profits)).all()
    assert profit_row.run_id == metrics_row.run_id and profit_row.rows == 200
    assert profit_row.contacted_top10 == 20 and profit_row.contacted >= 0
    profit_uri = next(u for u in row.report_uris if u.endswith("profit.html"))
    page = platform.runtime.store.get_bytes("reports", profit_uri.removeprefix("s3://reports/"))
    assert b"data:image/png;base64," in page and b"<th>top 10%</th>" in page
    # The report itself says which reference it used and why.
    for name in ("summary.json", "index.html"):
        uri = next(u for u in row.report_uris if u.endswith(name))
        page = platform.runtime.store.get_bytes("reports", uri.removeprefix("s3://reports/"))
        assert b"no baseline sample" in page and b"earliest scored batch" in page
    index = platform.runtime.store.get_bytes(
        "reports",
        next(u for u in row.report_uris if u.endswith("index.html")).removeprefix("s3://reports/"),
    )
    assert b'href="data_drift.html"' in index and b"ROC-AUC" in index


def test_gone_predictions_and_empty_columns_do_not_break_the_report(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    store, now = platform.runtime.store, datetime.now(UTC)
    kept_inputs = generate(300, seed=7)
    kept_inputs["notes"] = None  # an all-empty column: nothing to compare, left out
    scored_batch(
        platform,
        tmp_path,
        name="kept",
        rows=300,
        seed=7,
        inputs=kept_inputs,
        created_at=now - timedelta(hours=2),
    )
    gone = scored_batch(
        platform, tmp_path, name="gone", rows=200, seed=8, created_at=now - timedelta(hours=1)
    )
    with store.local_path("predictions", gone.predictions_ref.key) as path:
        path.unlink()  # retention removed it
    platform.publish(MonitoringRequested.start_chain("weekly-3"))
    platform.run()
    row = _report_row(platform)
    assert (row.status, row.scoring_runs, row.current_rows) == ("done", 2, 300)
    assert "data_drift.DriftedColumnsCount.count" in row.metrics
    assert not any("notes" in key for key in row.metrics)


def test_every_prediction_gone_is_a_skipped_report(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    gone = scored_batch(platform, tmp_path, name="gone", rows=50, seed=9)
    with platform.runtime.store.local_path("predictions", gone.predictions_ref.key) as path:
        path.unlink()
    platform.publish(MonitoringRequested.start_chain("weekly-4"))
    platform.run()
    row = _report_row(platform)
    assert row.status == "skipped"
    assert "predictions of the 1 batch(es) scored since" in row.reason
    assert row.reason.endswith("are gone")


def test_without_a_baseline_the_promoted_training_data_is_the_reference(
    make_platform: Callable[..., EmbeddedPlatform],
    tmp_path: Path,
    scored_batch: Callable[..., Any],
) -> None:
    platform = make_platform()
    training = tmp_path / "train.csv"
    generate(600, seed=10).to_csv(training, index=False)
    info = platform.runtime.store.put_file("landing", "training/train.csv", training)
    platform.publish(
        ModelPromoted.start_chain(
            "promo",
            model_name="churn-model",
            model_version="1",
            model_uri="models:/churn-model/1",
            challenger_pr_auc=0.6,
            training_data=ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag),
        )
    )
    scored_batch(platform, tmp_path, name="batch-p", rows=300, seed=11)
    platform.publish(MonitoringRequested.start_chain("weekly-5"))
    platform.run()
    row = _report_row(platform)
    assert (row.status, row.reference_source) == ("done", "training_data")
    assert row.reference_uri == "s3://landing/training/train.csv"
