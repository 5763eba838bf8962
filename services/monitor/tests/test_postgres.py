"""The monitor's tables on real Postgres: migration 002 matches the metadata, rows round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.db.tables import alerts, monitoring_reports, performance_metrics
from churnops_common.events import DataRejected, ObjectRef
from churnops_common.settings import Settings
from churnops_monitor.alerts import raise_alert, rejected_alert
from churnops_monitor.performance import (
    Evaluation,
    LabelledSet,
    evaluate_set,
    performance_run_id,
    store_evaluation,
)


@pytest.mark.services
def test_monitor_tables_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_url)
    assert "002_monitor_performance" in upgrade(engine)
    inspector = sa.inspect(engine)
    for table in (performance_metrics, monitoring_reports):
        found = {c["name"] for c in inspector.get_columns(table.name, schema="monitoring")}
        assert found == {c.name for c in table.columns}

    settings = Settings(churnops_home=tmp_path, monitoring_db_url=postgres_url, _env_file=None)  # type: ignore[call-arg]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(200)],
            "churned": rng.binomial(1, 0.3, 200),
            "churn_probability": rng.random(200),
            "region": rng.choice(["north", "south"], 200),
        }
    )
    ref = ObjectRef(bucket="landing", key="labels/l.csv", etag="e1")
    run_id = performance_run_id(ref, "churn-model", "1")
    evaluation: Evaluation = evaluate_set(
        LabelledSet("churn-model", "1", frame, ["r1"]), run_id, settings
    )
    store_evaluation(engine, evaluation, "labels", ref, "corr")
    store_evaluation(engine, evaluation, "labels", ref, "corr")  # idempotent
    with engine.connect() as conn:
        [row] = conn.execute(sa.select(performance_metrics)).all()
        segments = (
            conn.execute(
                sa.text("SELECT segment_value FROM monitoring.segment_metrics WHERE run_id = :r"),
                {"r": run_id},
            )
            .scalars()
            .all()
        )
    assert row.scoring_run_ids == ["r1"]
    assert len(row.calibration) == len(evaluation.metrics.calibration)
    assert sorted(segments) == ["north", "south"]

    event = DataRejected.start_chain("x", object=ref, quality_run_id="q", reason="empty file")
    assert raise_alert(engine, settings, rejected_alert(event), event).status == "skipped"
    assert (
        raise_alert(engine, settings, rejected_alert(event), event).error
        == "already recorded as skipped"
    )
    with engine.connect() as conn:
        [alert] = conn.execute(sa.select(alerts)).all()
    assert alert.payload["reason"] == "empty file"
    engine.dispose()
