"""The quality handlers in embedded mode: events, rows, reports, quarantine, baseline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from churnops_common.contract import baseline_prefix, pointer_key
from churnops_common.db.tables import dead_letters, feature_psi, quality_runs
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import (
    DataLanded,
    DataRejected,
    DataValidated,
    ModelPromoted,
    ObjectRef,
    PsiBreached,
    QualityRequested,
    SweepRequested,
)
from churnops_common.report_names import quality_folder
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_quality.baseline import load_baseline
from churnops_quality.handlers import run_id_for
from churnops_quality.service import run_quality


def _platform(settings: Settings) -> EmbeddedPlatform:
    return EmbeddedPlatform(settings, services={"quality"})


def _drop(
    platform: EmbeddedPlatform, folder: Path, name: str, frame: pd.DataFrame, kind: str
) -> DataLanded:
    path = folder / name
    frame.to_csv(path, index=False)
    event = platform.drop(path, kind)  # type: ignore[arg-type]
    platform.run()
    return event


def _runs(platform: EmbeddedPlatform) -> list[sa.Row]:  # type: ignore[type-arg]
    with platform.runtime.engine.connect() as conn:
        return list(conn.execute(sa.select(quality_runs).order_by(quality_runs.c.created_at)))


def _psi_rows(platform: EmbeddedPlatform, run_id: str) -> dict[str, float]:
    with platform.runtime.engine.connect() as conn:
        rows = conn.execute(sa.select(feature_psi).where(feature_psi.c.run_id == run_id))
        return {r.feature: r.psi for r in rows}


@pytest.fixture
def trained(settings: Settings, tmp_path: Path) -> EmbeddedPlatform:
    platform = _platform(settings)
    _drop(platform, tmp_path, "train.csv", generate(3000, seed=1), "training")
    return platform


def test_training_set_creates_the_baseline(trained: EmbeddedPlatform) -> None:
    [validated] = trained.events_of("DataValidated")
    assert isinstance(validated, DataValidated)
    assert (validated.kind, validated.rows, validated.has_target) == ("training", 3000, True)
    store, settings = trained.runtime.store, trained.settings
    assert store.exists(settings.minio_models_bucket, pointer_key(settings.mlflow_model_name))
    assert store.exists(
        settings.minio_models_bucket,
        f"{baseline_prefix(settings.mlflow_model_name)}/v0001/sample.parquet",
    )
    baseline = load_baseline(store, settings)
    assert baseline is not None and baseline.version == 1
    [run] = _runs(trained)
    assert (run.status, run.kind, run.has_target, run.rows) == ("accepted", "training", True, 3000)


def test_clean_batch_validated_without_breach(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    batch = generate(1000, seed=11).drop(columns=["churned"])
    landed = _drop(trained, tmp_path, "batch.csv", batch, "new_data")
    validated = trained.events_of("DataValidated")[-1]
    assert isinstance(validated, DataValidated)
    assert validated.object == landed.object and validated.kind == "new_data"
    assert not validated.has_target and validated.max_psi is not None
    assert validated.max_psi < trained.settings.psi_threshold
    assert trained.events_of("PsiBreached") == []
    run = _runs(trained)[-1]
    assert run.run_id == validated.quality_run_id and not run.psi_breached
    psi = _psi_rows(trained, run.run_id)
    assert "monthly_charges" in psi and "customer_id" not in psi
    assert max(psi.values()) == pytest.approx(validated.max_psi)
    folder = quality_folder(run.object_key, run.run_id)
    assert folder == f"quality/batch/{run.run_id}"  # named after the file
    report = trained.runtime.store.get_bytes("reports", f"{folder}/report.html").decode()
    assert "accepted, no drift" in report and "data:image/png;base64," in report
    assert run.report_uri == f"s3://reports/{folder}/report.html"


def test_the_report_follows_the_verdict_once(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    batch = generate(500, seed=11).drop(columns=["churned"])
    landed = _drop(trained, tmp_path, "batch.csv", batch, "new_data")
    chain = [e for e in trained.bus.published if e.correlation_id == landed.correlation_id]
    # The verdict is out before the report is asked for: nothing waits for the plots.
    order = [e.event_type for e in chain]
    assert order == ["DataLanded", "DataValidated", "QualityReportRequested"]
    request = chain[-1]
    run = _runs(trained)[-1]
    folder = quality_folder(run.object_key, run.run_id)
    assert run.report_uri == f"s3://reports/{folder}/report.html"
    # A redelivered request is not rendered again; a re-run of the check keeps the location.
    outcomes: list[str] = []
    trained.publish(request)
    trained.run(on_outcome=lambda _t, o: outcomes.append(o.status))
    assert outcomes == ["skipped"]
    assert isinstance(landed, DataLanded)
    run_quality(trained.runtime, landed.object, landed.kind, run.run_id, landed.correlation_id)
    assert _runs(trained)[-1].report_uri == run.report_uri


def test_malformed_file_rejected_and_quarantined(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("region;age;tenure_months\nnorth;41;12\nsouth;35;3\n", encoding="utf-8")
    landed = trained.drop(path, "new_data")
    trained.run()
    [rejected] = trained.events_of("DataRejected")
    assert isinstance(rejected, DataRejected)
    assert "';'-delimited" in rejected.reason and "no 'customer_id'" in rejected.reason
    store = trained.runtime.store
    assert store.exists("landing", landed.object.key)  # the original stays
    assert rejected.quarantine is not None
    assert rejected.quarantine.key == f"quarantine/{rejected.quality_run_id}/broken.csv"
    assert store.get_bytes("reports", rejected.quarantine.key) == path.read_bytes()
    reason = json.loads(
        store.get_bytes("reports", f"quarantine/{rejected.quality_run_id}/reason.json")
    )
    assert reason["reason"] == rejected.reason and reason["object"] == landed.object.uri
    run = _runs(trained)[-1]
    assert (run.status, run.reason) == ("rejected", rejected.reason)
    assert run.details["issues"][0]["code"] == "wrong_delimiter"
    assert trained.events_of("DataValidated")[-1].kind == "training"  # nothing validated


def test_drifted_batch_breaches_psi(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    _drop(trained, tmp_path, "drifted.csv", generate(3000, seed=15, drift=1.0), "new_data")
    [breach] = trained.events_of("PsiBreached")
    assert isinstance(breach, PsiBreached)
    assert "monthly_charges" in breach.features
    assert all(v >= 0.2 for v in breach.features.values())
    assert breach.max_psi == max(breach.features.values())
    validated = trained.events_of("DataValidated")[-1]
    assert isinstance(validated, DataValidated) and validated.has_target
    run = _runs(trained)[-1]
    assert run.psi_breached and run.has_target
    psi = _psi_rows(trained, run.run_id)
    assert {k for k, v in psi.items() if v >= 0.2} == set(breach.features)


def test_labels_file(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    labels = generate(500, seed=11)[["customer_id", "churned"]]
    _drop(trained, tmp_path, "labels.csv", labels, "labels")
    validated = trained.events_of("DataValidated")[-1]
    assert isinstance(validated, DataValidated)
    assert (validated.kind, validated.has_target, validated.max_psi) == ("labels", True, None)
    run = _runs(trained)[-1]
    assert (run.kind, run.has_target) == ("labels", True)


def test_rerun_of_a_run_keeps_one_row(trained: EmbeddedPlatform) -> None:
    [landed] = trained.events_of("DataLanded")
    assert isinstance(landed, DataLanded)
    run_id = run_id_for(landed.idempotency_key)
    run_quality(trained.runtime, landed.object, landed.kind, run_id, landed.correlation_id)
    assert [r.run_id for r in _runs(trained)] == [run_id]


def test_sweep_finds_objects_without_a_record(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    path = tmp_path / "lost.csv"
    generate(300, seed=12).drop(columns=["churned"]).to_csv(path, index=False)
    # Landed, but its notification was lost: no event.
    trained.runtime.store.put_file("landing", "new_data/lost.csv", path)
    trained.publish(SweepRequested.start_chain("sweep-1"))
    trained.run()
    swept = [
        e
        for e in trained.events_of("DataLanded")
        if isinstance(e, DataLanded) and e.source == "sweep"
    ]
    assert [e.object.key for e in swept] == ["new_data/lost.csv"]
    assert trained.events_of("DataValidated")[-1].object.key == "new_data/lost.csv"
    before = len(trained.bus.published)
    trained.publish(SweepRequested.start_chain("sweep-2"))
    trained.run()
    assert [e.event_type for e in trained.bus.published[before:]] == ["SweepRequested"]


def test_quality_requested_does_not_repeat_a_check(
    trained: EmbeddedPlatform, tmp_path: Path
) -> None:
    # The drifted batch was checked (and breached) when it landed, against baseline v1.
    _drop(trained, tmp_path, "drifted.csv", generate(2000, seed=15, drift=1.0), "new_data")
    assert len(trained.events_of("PsiBreached")) == 1
    before = len(trained.bus.published)
    for day in ("daily-1", "daily-2"):
        trained.publish(QualityRequested.start_chain(day))
        trained.run()
    after = [e.event_type for e in trained.bus.published[before:]]
    assert after == ["QualityRequested", "QualityRequested"]  # no PsiBreached, no DataValidated
    assert len(_runs(trained)) == 2  # the training set's run and the batch's: no new rows


def test_quality_requested_rechecks_against_a_newer_baseline(
    settings: Settings, tmp_path: Path
) -> None:
    platform = _platform(settings)
    # Landed before any baseline existed: accepted without PSI.
    _drop(platform, tmp_path, "drifted.csv", generate(2000, seed=15, drift=1.0), "new_data")
    _drop(platform, tmp_path, "train.csv", generate(3000, seed=1), "training")
    assert platform.events_of("PsiBreached") == []
    request = QualityRequested.start_chain("daily-1")
    platform.publish(request)
    platform.run()
    [breach] = platform.events_of("PsiBreached")
    assert isinstance(breach, PsiBreached) and breach.object.key == "new_data/drifted.csv"
    assert [e.event_type for e in platform.events_of("DataValidated")] == ["DataValidated"] * 2
    recheck = _runs(platform)[-1]
    assert recheck.run_id == breach.quality_run_id and recheck.psi_breached
    # Recorded, but not as new labelled data: the trainer counts has_target rows.
    assert recheck.details["recheck"] is True and recheck.details["baseline_version"] == 1
    assert recheck.details["file_has_target"] is True and recheck.has_target is False
    # A retry of the same request (its publish failed) redoes its run with the same ids.
    from churnops_quality.handlers import on_quality_requested

    again = on_quality_requested(request, platform.runtime)
    [report] = platform.events_of("QualityReportRequested")[-1:]
    assert [e.event_id for e in again] == [breach.event_id, report.event_id]
    assert len(_runs(platform)) == 3
    # The next day's request: the same file against the same baseline is not checked again.
    platform.publish(QualityRequested.start_chain("daily-2"))
    platform.run()
    assert len(platform.events_of("PsiBreached")) == 1 and len(_runs(platform)) == 3


def test_quality_requested_with_nothing_landed(settings: Settings) -> None:
    platform = _platform(settings)
    platform.publish(QualityRequested.start_chain("daily-1"))
    platform.run()
    assert [e.event_type for e in platform.bus.published] == ["QualityRequested"]


def _promote(
    platform: EmbeddedPlatform, tmp_path: Path, version: str, frame: pd.DataFrame
) -> ObjectRef:
    path = tmp_path / f"train-v{version}.csv"
    frame.to_csv(path, index=False)
    info = platform.runtime.store.put_file("landing", f"training/{path.name}", path)
    data = ObjectRef(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
    platform.publish(
        ModelPromoted.start_chain(
            f"promo-{version}",
            model_name="churn-model",
            model_version=version,
            model_uri=f"models:/churn-model/{version}",
            challenger_pr_auc=0.7,
            training_data=data,
        )
    )
    platform.run()
    return data


def test_promotion_refreshes_the_baseline(trained: EmbeddedPlatform, tmp_path: Path) -> None:
    data = _promote(trained, tmp_path, "2", generate(3000, seed=21, drift=1.0))
    baseline = load_baseline(trained.runtime.store, trained.settings)
    assert baseline is not None
    assert (baseline.version, baseline.source) == (2, data.versioned_uri)
    assert baseline.model_version == "2"
    # A drifted batch no longer breaches against the drifted reference.
    _drop(trained, tmp_path, "drifted.csv", generate(2000, seed=15, drift=1.0), "new_data")
    assert trained.events_of("PsiBreached") == []


def test_a_late_older_promotion_keeps_the_newer_baseline(
    trained: EmbeddedPlatform,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MLflow's migrations run logging.config.fileConfig, which disables existing loggers.
    monkeypatch.setattr(logging.getLogger("churnops_quality.refresh"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="churnops_quality.refresh")
    newer = _promote(trained, tmp_path, "3", generate(1500, seed=31, drift=1.0))
    _promote(trained, tmp_path, "2", generate(1500, seed=21))  # handled after v3's
    baseline = load_baseline(trained.runtime.store, trained.settings)
    assert baseline is not None
    assert (baseline.version, baseline.source, baseline.model_version) == (
        2,
        newer.versioned_uri,
        "3",
    )
    assert "promotion of v2 is ignored" in caplog.text
    assert not trained.runtime.store.exists(
        trained.settings.minio_models_bucket,
        f"{baseline_prefix(trained.settings.mlflow_model_name)}/v0003/profile.json",
    )


def test_mlflow_run_logged(settings: Settings, tmp_path: Path) -> None:
    import mlflow

    platform = _platform(settings.model_copy(update={"quality_mlflow_enabled": True}))
    _drop(platform, tmp_path, "train.csv", generate(1000, seed=1), "training")
    _drop(platform, tmp_path, "batch.csv", generate(500, seed=11), "new_data")
    client = mlflow.tracking.MlflowClient(tracking_uri=settings.mlflow_uri())
    experiment = client.get_experiment_by_name("data_quality_psi")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "data_quality_psi"
    assert "psi.monthly_charges" in run.data.metrics and "max_psi" in run.data.metrics
    assert run.data.tags["churnops.quality_run_id"] == _runs(platform)[-1].run_id


def test_vanished_object_is_rejected_not_crashed(trained: EmbeddedPlatform) -> None:
    ghost = ObjectRef(bucket="landing", key="new_data/ghost.csv", etag="abc", size=10)
    trained.publish(DataLanded.start_chain(ghost.versioned_uri, object=ghost, kind="new_data"))
    trained.run()
    [rejected] = trained.events_of("DataRejected")
    assert isinstance(rejected, DataRejected)
    assert rejected.reason == "s3://landing/new_data/ghost.csv no longer exists in the object store"
    assert rejected.quarantine is None
    assert _runs(trained)[-1].status == "rejected"


def test_huge_file_rejected_from_its_size(settings: Settings, tmp_path: Path) -> None:
    platform = _platform(settings.model_copy(update={"quality_max_file_mb": 0.01}))
    _drop(platform, tmp_path, "big.csv", generate(2000, seed=4), "new_data")
    [rejected] = platform.events_of("DataRejected")
    assert isinstance(rejected, DataRejected)
    assert "MiB limit (QUALITY_MAX_FILE_MB)" in rejected.reason
    assert rejected.details["issues"][0]["code"] == "file_too_large"
    assert rejected.quarantine is not None  # the copy and its reason still exist


def test_promotion_without_training_data_keeps_the_baseline(trained: EmbeddedPlatform) -> None:
    trained.publish(
        ModelPromoted.start_chain(
            "promo-x",
            model_name="churn-model",
            model_version="9",
            model_uri="models:/m/9",
            challenger_pr_auc=0.5,
        )
    )
    trained.run()
    baseline = load_baseline(trained.runtime.store, trained.settings)
    assert baseline is not None and baseline.version == 1


def test_pdf_report_beside_the_html(settings: Settings, tmp_path: Path) -> None:
    from churnops_quality.report import render_pdf

    if render_pdf("<p>probe</p>") is None:
        pytest.skip("WeasyPrint cannot run here (no Pango): reports are HTML-only")
    platform = _platform(settings.model_copy(update={"quality_pdf_enabled": True}))
    _drop(platform, tmp_path, "train.csv", generate(500, seed=1), "training")
    _drop(platform, tmp_path, "batch.csv", generate(300, seed=11), "new_data")
    run = _runs(platform)[-1]
    folder = quality_folder(run.object_key, run.run_id)
    pdf = platform.runtime.store.get_bytes("reports", f"{folder}/report.pdf")
    assert pdf.startswith(b"%PDF")


def _write_parquet(path: Path, extra: dict[str, object]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(
        generate(200, seed=7).drop(columns=["churned"]), preserve_index=False
    )
    for name, values in extra.items():
        table = table.append_column(name, values)  # type: ignore[arg-type]
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("address", "column 'address' is nested (struct"),
        ("tags", "column 'tags' is nested (list"),
        ("attrs", "column 'attrs' is nested (map"),
        ("raw", "unreadable: "),  # bytes that are not text: no check foresaw it
    ],
)
def test_unvalidatable_parquet_is_rejected_not_dead_lettered(
    trained: EmbeddedPlatform, tmp_path: Path, column: str, expected: str
) -> None:
    import pyarrow as pa

    values = {
        "address": pa.array([{"city": "x", "zip": 1}] * 200),
        "tags": pa.array([[1, 2]] * 200),
        "attrs": pa.array([[("a", 1)]] * 200, pa.map_(pa.string(), pa.int64())),
        "raw": pa.array([b"\xff\xfe"] * 200),
    }
    path = _write_parquet(tmp_path / f"{column}.parquet", {column: values[column]})
    trained.drop(path, "new_data")
    outcomes: list[str] = []
    trained.run(on_outcome=lambda _t, o: outcomes.append(o.status))
    assert outcomes == ["done", "done"]  # the check, then its report
    [rejected] = trained.events_of("DataRejected")
    assert isinstance(rejected, DataRejected)
    assert rejected.reason.startswith(expected)
    assert "\n" not in rejected.reason
    assert rejected.quarantine is not None
    assert trained.runtime.store.exists("reports", rejected.quarantine.key)
    run = _runs(trained)[-1]
    assert (run.run_id, run.status) == (rejected.quality_run_id, "rejected")
    with trained.runtime.engine.connect() as conn:
        assert conn.execute(sa.select(dead_letters)).first() is None


def test_a_file_named_reason_json_and_a_huge_header_keep_short_separate_reasons(
    trained: EmbeddedPlatform, tmp_path: Path
) -> None:
    store = trained.runtime.store
    named = tmp_path / "reason.json"
    named.write_text('{"forged": "reason"}\n', encoding="utf-8")
    huge = tmp_path / "huge-header.csv"
    # A ';'-delimited header is quoted in the reason (one 127 kB field: under the CSV
    # reader's field limit, so it is read, not refused as unreadable).
    header = ";".join(f"column_{i:06d}_" + "x" * 40 for i in range(2300))
    huge.write_text(header + "\n1;2\n", encoding="utf-8")
    assert len(header) > 120_000
    for path in (named, huge):
        trained.drop(path, "new_data")
    trained.run()

    rejected = {
        e.object.key: e for e in trained.events_of("DataRejected") if isinstance(e, DataRejected)
    }
    forged = rejected["new_data/reason.json"]
    assert forged.quarantine is not None
    assert forged.quarantine.key == f"quarantine/{forged.quality_run_id}/landed-reason.json"
    assert store.get_bytes("reports", forged.quarantine.key) == named.read_bytes()
    kept = json.loads(store.get_bytes("reports", f"quarantine/{forged.quality_run_id}/reason.json"))
    assert kept["object"] == "s3://landing/new_data/reason.json"  # its own reason, not the file

    capped = rejected["new_data/huge-header.csv"]
    assert 0 < len(capped.reason) <= 2000 and capped.reason.endswith("more characters)")
    assert len(json.dumps(capped.model_dump(mode="json"))) < 20_000
    reason_file = store.get_bytes("reports", f"quarantine/{capped.quality_run_id}/reason.json")
    assert len(reason_file) < 20_000
    run = next(r for r in _runs(trained) if r.run_id == capped.quality_run_id)
    assert run.reason == capped.reason


def test_the_sweep_streams_the_listing_page_by_page(
    trained: EmbeddedPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages smaller than the listing: every unrecorded object is found, recorded ones never."""
    from churnops_quality import sweep

    monkeypatch.setattr(sweep, "PAGE", 2)
    keys = [f"new_data/lost-{n}.csv" for n in range(5)]
    for n, key in enumerate(keys):
        path = tmp_path / f"lost-{n}.csv"
        generate(120, seed=40 + n).drop(columns=["churned"]).to_csv(path, index=False)
        trained.runtime.store.put_file("landing", key, path)
    trained.publish(SweepRequested.start_chain("sweep-paged-1"))
    trained.run()
    swept = [
        e.object.key
        for e in trained.events_of("DataLanded")
        if isinstance(e, DataLanded) and e.source == "sweep"
    ]
    assert sorted(swept) == keys  # the files landed before (with events) are not among them
    before = len(trained.bus.published)
    trained.publish(SweepRequested.start_chain("sweep-paged-2"))
    trained.run()
    assert [e.event_type for e in trained.bus.published[before:]] == ["SweepRequested"]
