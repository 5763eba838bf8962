"""Alerts go to a real HTTP server on 127.0.0.1 started by the test; failing and slow endpoints
must leave the pipeline running and the alert recorded as failed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from churnops_common.db.tables import alerts
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import (
    DataRejected,
    ModelPromoted,
    ModelRejected,
    ObjectRef,
    PerformanceDegraded,
    PsiBreached,
)


class Hook:
    """What the webhook server received, and how it should answer."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.delay_s = 0.0
        self.release = threading.Event()


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.bodies.append(json.loads(body))
            if state.delay_s:
                state.release.wait(state.delay_s)  # a slow endpoint, released at teardown
            self.send_response(state.status)
            self.end_headers()
            self.wfile.write(b"ok" if state.status < 300 else b"boom")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    state.release.set()
    server.shutdown()
    server.server_close()


OBJ = ObjectRef(bucket="landing", key="new_data/batch-7.csv", etag="abc123")


def _events() -> list[Any]:
    return [
        PsiBreached.start_chain(
            "psi",
            object=OBJ,
            quality_run_id="q1",
            features={"age": 0.31, "region": 0.25},
            max_psi=0.31,
            threshold=0.2,
        ),
        DataRejected.start_chain(
            "rej", object=OBJ, kind="new_data", quality_run_id="q2", reason="no customer_id column"
        ),
        PerformanceDegraded.start_chain(
            "deg",
            model_name="churn-model",
            model_version="3",
            metric="pr_auc",
            value=0.31,
            threshold=0.4,
        ),
        ModelPromoted.start_chain(
            "pro",
            model_name="churn-model",
            model_version="4",
            model_uri="models:/churn-model/4",
            challenger_pr_auc=0.61,
            champion_pr_auc=0.55,
            previous_version="3",
        ),
        ModelRejected.start_chain(
            "mrej",
            model_name="churn-model",
            model_version="5",
            challenger_pr_auc=0.5,
            champion_pr_auc=0.61,
            reason="not better by 0.01",
        ),
    ]


def _alert_rows(platform: EmbeddedPlatform) -> dict[str, Any]:
    with platform.runtime.engine.connect() as conn:
        return {row.kind: row for row in conn.execute(select(alerts))}


def test_every_alert_kind_is_delivered_and_recorded(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    state, url = hook
    platform = make_platform(alert_webhook_url=url)
    for event in _events():
        platform.publish(event)
    assert platform.run() == 5
    rows = _alert_rows(platform)
    assert set(rows) == {
        "PsiBreached",
        "DataRejected",
        "PerformanceDegraded",
        "ModelPromoted",
        "ModelRejected",
    }
    assert {r.status for r in rows.values()} == {"sent"}
    texts = [b["text"] for b in state.bodies]
    assert len(texts) == 5
    drift = "accepted, drift in 2 features: retrain requested"
    assert any(drift in t and "age=0.310" in t for t in texts)
    assert any("no customer_id column" in t for t in texts)
    assert any("v4 is the champion" in t for t in texts)
    assert rows["PsiBreached"].payload["quality_run_id"] == "q1"

    # The same events again (a redelivery with new ids): each alert key pages nobody twice.
    for event in _events():
        platform.publish(event.model_copy(update={"event_id": event.event_id + "-again"}))
    platform.run()
    assert len(state.bodies) == 5


def test_failing_endpoint_is_retried_then_recorded_failed(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    state, url = hook
    state.status = 500
    platform = make_platform(alert_webhook_url=url, alert_max_attempts=3, alert_timeout_s=2)
    platform.publish(_events()[1])
    platform.run()
    row = _alert_rows(platform)["DataRejected"]
    assert row.status == "failed"
    assert row.attempts == 3
    assert "HTTP 500" in row.error
    assert url not in row.error
    assert len(state.bodies) == 3


def test_slow_endpoint_does_not_stall_the_pipeline(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    state, url = hook
    state.delay_s = 30.0
    platform = make_platform(
        alert_webhook_url=url, alert_max_attempts=2, alert_timeout_s=0.3, alert_budget_s=2.0
    )
    started = time.monotonic()
    platform.publish(_events()[0])
    outcomes: list[str] = []
    platform.run(on_outcome=lambda _task, outcome: outcomes.append(outcome.status))
    assert outcomes == ["done"]  # the handler returned normally; nothing dead-lettered
    row = _alert_rows(platform)["PsiBreached"]
    assert row.status == "failed"
    assert "timed out" in row.error
    assert row.attempts == 2
    # Sanity only: far below the endpoint's 30 s delay.
    assert time.monotonic() - started < 20


def test_no_url_records_a_skipped_alert_and_sends_nothing(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    state, _ = hook
    platform = make_platform()
    platform.publish(_events()[3])
    platform.run()
    row = _alert_rows(platform)["ModelPromoted"]
    assert row.status == "skipped"
    assert row.attempts == 0
    assert state.bodies == []


def test_unreachable_endpoint_is_a_failed_alert(
    make_platform: Callable[..., EmbeddedPlatform],
) -> None:
    # Port 9 (discard) on 127.0.0.1: connection refused at once.
    platform = make_platform(alert_webhook_url="http://127.0.0.1:9/x", alert_max_attempts=2)
    platform.publish(_events()[2])
    platform.run()
    row = _alert_rows(platform)["PerformanceDegraded"]
    assert row.status == "failed"
    assert "ConnectError" in row.error


def test_failed_alert_is_retried_by_a_later_event_within_its_rounds(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    from churnops_monitor.alerts import MAX_DELIVERY_ROUNDS

    state, url = hook
    state.status = 503  # the webhook is down
    platform = make_platform(alert_webhook_url=url, alert_max_attempts=1)
    psi, rejected = _events()[0], _events()[1]

    def again(event: Any, n: int) -> Any:
        return event.model_copy(update={"event_id": f"{event.event_id}-{n}"})

    platform.publish(psi)
    platform.run()
    assert (_alert_rows(platform)["PsiBreached"].status, len(state.bodies)) == ("failed", 1)
    state.status = 200  # back up: the next event with this key delivers the page
    platform.publish(again(psi, 1))
    platform.run()
    row = _alert_rows(platform)["PsiBreached"]
    assert (row.status, row.attempts, row.error, len(state.bodies)) == ("sent", 2, None, 2)
    platform.publish(again(psi, 2))  # sent: never again
    platform.run()
    assert len(state.bodies) == 2

    state.status = 500  # a key that keeps failing is tried a bounded number of rounds
    for n in range(MAX_DELIVERY_ROUNDS + 2):
        platform.publish(again(rejected, n))
        platform.run()
    row = _alert_rows(platform)["DataRejected"]
    assert (row.status, row.attempts) == ("failed", MAX_DELIVERY_ROUNDS)
    assert len(state.bodies) == 2 + MAX_DELIVERY_ROUNDS


@pytest.mark.services
def test_two_replicas_page_once(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str], postgres_url: str
) -> None:
    from churnops_monitor.alerts import psi_alert, raise_alert

    state, url = hook
    state.delay_s = 1.0  # a slow webhook: the second replica looks while the first is sending
    platform = make_platform(alert_webhook_url=url, monitoring_db_url=postgres_url)
    engine, settings = platform.runtime.engine, platform.settings
    event = _events()[0]
    copies = [event, event.model_copy(update={"event_id": event.event_id + "-copy"})]
    barrier = threading.Barrier(2)
    statuses: list[str] = []

    def replica(copy: Any) -> None:
        barrier.wait()
        statuses.append(raise_alert(engine, settings, psi_alert(copy), copy).status)

    threads = [threading.Thread(target=replica, args=(c,)) for c in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["sent", "skipped"]
    assert len(state.bodies) == 1
    [row] = _alert_rows(platform).values()
    assert (row.status, row.attempts) == ("sent", 1)
    engine.dispose()


def test_a_claim_left_pending_by_a_crash_is_taken_by_the_same_event_only(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    from datetime import UTC, datetime

    from churnops_monitor.alerts import promoted_alert, raise_alert

    state, url = hook
    platform = make_platform(alert_webhook_url=url)
    engine, settings = platform.runtime.engine, platform.settings
    event = _events()[3]
    alert = promoted_alert(event)
    with engine.begin() as conn:  # a worker claimed the key, then died before sending
        conn.execute(
            alerts.insert().values(
                alert_key=alert.key,
                kind=alert.kind,
                message=alert.text,
                payload=event.model_dump(mode="json"),
                status="pending",
                attempts=0,
                created_at=datetime.now(UTC),
            )
        )
    other = event.model_copy(update={"event_id": event.event_id + "-other"})
    assert raise_alert(engine, settings, alert, other).error == "already recorded as pending"
    assert state.bodies == []
    assert raise_alert(engine, settings, alert, event).status == "sent"  # redelivered
    assert len(state.bodies) == 1
    assert _alert_rows(platform)["ModelPromoted"].status == "sent"


def test_user_text_cannot_ping_the_channel_or_link(
    make_platform: Callable[..., EmbeddedPlatform], hook: tuple[Hook, str]
) -> None:
    state, url = hook
    platform = make_platform(alert_webhook_url=url)
    hostile = ObjectRef(bucket="landing", key="new_data/<!channel>.csv", etag="e1")
    platform.publish(
        DataRejected.start_chain(
            "hostile",
            object=hostile,
            kind="new_data",
            quality_run_id="q9",
            reason="column <http://evil.example|click> & more",
        )
    )
    assert platform.run() == 1
    (body,) = state.bodies
    assert "&lt;!channel&gt;" in body["text"] and "<!channel>" not in body["text"]
    assert "&lt;http://evil.example|click&gt; &amp; more" in body["text"]
    assert "<" not in body["text"] and ">" not in body["text"]
