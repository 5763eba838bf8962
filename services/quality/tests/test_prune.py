"""The daily prune (part of the sweep): old ledger rows and dead letters go, recent ones stay,
and an old file whose ledger row was pruned is not announced again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from churnops_common.db.tables import dead_letters, processed_events, quality_runs
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import SweepRequested
from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_quality.prune import prune

OLD = datetime.now(UTC) - timedelta(days=400)


def test_the_sweep_prunes_old_records_and_does_not_announce_old_files_again(
    settings: Settings, tmp_path: Path
) -> None:
    platform = EmbeddedPlatform(settings, services={"quality"})
    engine = platform.runtime.engine
    path = tmp_path / "old.csv"
    generate(200, seed=1).to_csv(path, index=False)
    platform.drop(path, "training")
    platform.run()
    with engine.begin() as conn:  # everything so far happened a long time ago
        conn.execute(sa.update(processed_events).values(started_at=OLD, finished_at=OLD))
        conn.execute(sa.update(quality_runs).values(created_at=OLD))
        for created in (OLD, datetime.now(UTC)):
            conn.execute(
                dead_letters.insert().values(
                    task_name="t", payload=json.dumps({}), error="e", created_at=created
                )
            )
    before = len(platform.bus.published)

    platform.publish(SweepRequested.start_chain("daily"))
    platform.run()

    with engine.connect() as conn:
        ledger = conn.execute(sa.select(processed_events.c.task_name)).scalars().all()
        letters = conn.execute(sa.select(dead_letters.c.created_at)).scalars().all()
    # Only the sweep's own (fresh) row is left in the ledger; the old dead letter is gone.
    assert ledger == ["churnops.quality.on_sweep_requested"]
    assert len(letters) == 1
    # The old file's ledger row was pruned, but its quality run is on record: not re-announced.
    assert [e.event_type for e in platform.bus.published[before:]] == ["SweepRequested"]
    assert prune(platform.runtime).ledger_rows == 0  # nothing old is left


def test_zero_keeps_everything(settings: Settings, tmp_path: Path) -> None:
    keep = settings.model_copy(
        update={"retention_ledger_days": 0, "retention_dead_letters_days": 0}
    )
    platform = EmbeddedPlatform(keep, services={"quality"})
    with platform.runtime.engine.begin() as conn:
        conn.execute(
            dead_letters.insert().values(task_name="t", payload="{}", error="e", created_at=OLD)
        )
    pruned = prune(platform.runtime)
    assert (pruned.ledger_rows, pruned.dead_letters) == (0, 0)
