"""The last-chunk guard on Postgres: of chunks finishing at the same moment, exactly one
assembles, and a redelivered assembler is told to assemble again."""

from __future__ import annotations

import threading

import pytest

from churnops_common.db.engine import make_engine
from churnops_common.db.migrations import upgrade
from churnops_common.events import ObjectRef
from churnops_scorer import records

pytestmark = pytest.mark.services


def test_exactly_one_of_racing_last_chunks_assembles(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    ref = ObjectRef(bucket="landing", key="new_data/big.csv", etag="e1")
    for attempt in range(8):
        run_id = f"run-{attempt}"
        records.start_job(engine, run_id, ref, "m", str(attempt), 3, False, "c")
        records.finish_chunk(engine, run_id, 0, 10, 0.1, "p0")
        barrier = threading.Barrier(2)
        verdicts: dict[int, bool] = {}

        def finish(
            index: int,
            run_id: str = run_id,
            barrier: threading.Barrier = barrier,
            verdicts: dict[int, bool] = verdicts,
        ) -> None:
            barrier.wait()
            verdicts[index] = records.finish_chunk(engine, run_id, index, 10, 0.1, f"p{index}")

        threads = [threading.Thread(target=finish, args=(i,)) for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(verdicts.values()) == [False, True]
        assembler = next(i for i, v in verdicts.items() if v)
        # The assembler's task redelivered (its worker died): it assembles again; others not.
        assert records.finish_chunk(engine, run_id, assembler, 10, 0.1, f"p{assembler}")
        assert not records.finish_chunk(engine, run_id, 0, 10, 0.1, "p0")
        job = records.job(engine, run_id)
        assert job is not None and (job.status, job.assembler_chunk) == ("assembling", assembler)
    engine.dispose()
