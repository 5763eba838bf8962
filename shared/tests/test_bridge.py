from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnops_common.bridge import Bridge, MalformedNotification, classify, parse_notification
from churnops_common.events import DataLanded, Event


class RecordingBus:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail = False

    def publish(self, event: Event) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.events.append(event)


@pytest.fixture
def element(minio_fixtures_dir: Path) -> bytes:
    return (minio_fixtures_dir / "redis-access-element.json").read_bytes()


def _with(element: bytes, **changes: object) -> bytes:
    doc = json.loads(element)
    record = doc[0]["Event"][0]
    for path, value in changes.items():
        target = record
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return json.dumps(doc).encode()


def test_fixture_element_becomes_one_data_landed(element: bytes) -> None:
    [event] = parse_notification(element, "landing")
    assert isinstance(event, DataLanded)
    assert event.object.key == "new_data/2026-11-29 batch 01.csv"  # unquote_plus, not unquote
    assert event.object.etag == "9b2cf535f27731c974343645a3985328"
    assert event.object.size == 48213
    assert event.kind == "new_data"
    assert event.source == "notification"
    # Same object, same etag: the same event id, so duplicates are recognisable.
    assert parse_notification(element, "landing")[0].event_id == event.event_id


def test_multipart_and_kinds_and_ignored_events(element: bytes) -> None:
    multipart = _with(
        element,
        eventName="s3:ObjectCreated:CompleteMultipartUpload",
        s3__object__key="training%2Fbig+file.parquet",
        s3__object__eTag="0123456789abcdef0123456789abcdef-3",
    )
    [event] = parse_notification(multipart, "landing")
    assert (event.kind, event.object.key) == ("training", "training/big file.parquet")
    assert event.object.etag.endswith("-3")
    removed = _with(
        element,
        eventName="s3:ObjectRemoved:Delete",
        s3__object__size=None,
        s3__object__eTag=None,
        s3__object__contentType=None,
    )
    assert parse_notification(removed, "landing") == []
    assert parse_notification(_with(element, s3__object__key="other%2Fx.csv"), "landing") == []
    assert parse_notification(_with(element, s3__bucket__name="reports"), "landing") == []


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"Event": []}',
        b'[{"Records": []}]',
        b'[{"Event": [{"eventName": 1}]}]',
        b"\xff\xfe",
        b"[1]",
        b"[" + b"9" * 5000 + b"]",  # past Python's int digit limit: a ValueError, not JSON's
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the recursion limit
    ],
)
def test_malformed_elements_raise(raw: bytes) -> None:
    with pytest.raises(MalformedNotification):
        parse_notification(raw, "landing")


def test_path_tricks_in_keys_are_malformed(element: bytes) -> None:
    with pytest.raises(MalformedNotification, match="segment"):
        parse_notification(_with(element, s3__object__key="new_data%2F..%2F..%2Fetc"), "landing")


def test_classify() -> None:
    assert classify("new_data/a.csv") == "new_data"
    assert classify("labels/2026/a.csv") == "labels"
    assert classify("training/x.parquet") == "training"
    assert classify("new_data/") is None
    assert classify("elsewhere/a.csv") is None


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    from redis import Redis

    client = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    yield client
    client.close()


@pytest.mark.services
def test_bridge_over_real_redis_handles_duplicate_and_malformed(
    redis_client: object,
    element: bytes,
) -> None:
    from redis import Redis

    assert isinstance(redis_client, Redis)
    key = f"test:minio:{uuid.uuid4().hex}"
    bus = RecordingBus()
    bridge = Bridge(redis_client, bus, key, "landing")
    redis_client.rpush(key, element, b"{broken", element)
    while bridge.step(timeout=0.1):
        pass
    assert len(bus.events) == 2
    assert bus.events[0].event_id == bus.events[1].event_id  # the ledger drops the twin
    assert redis_client.llen(key) == 0
    assert redis_client.llen(bridge.processing_key) == 0
    assert redis_client.lrange(bridge.parked_key, 0, -1) == [b"{broken"]
    assert bridge.stats.parked == 1
    redis_client.delete(key, bridge.processing_key, bridge.parked_key)


@pytest.mark.services
def test_bridge_keeps_the_element_when_publish_fails_and_redrives_it(
    redis_client: object,
    element: bytes,
) -> None:
    from redis import Redis

    assert isinstance(redis_client, Redis)
    key = f"test:minio:{uuid.uuid4().hex}"
    bus = RecordingBus()
    bus.fail = True
    crashed = Bridge(redis_client, bus, key, "landing")
    redis_client.rpush(key, element)
    with pytest.raises(ConnectionError):
        crashed.step(timeout=0.1)
    # The element is not lost: it waits in the processing list.
    assert redis_client.lrange(crashed.processing_key, 0, -1) == [element]
    bus.fail = False
    restarted = Bridge(redis_client, bus, key, "landing")
    assert restarted.recover() == 1
    assert len(bus.events) == 1
    assert redis_client.llen(restarted.processing_key) == 0
    redis_client.delete(key, crashed.processing_key, crashed.parked_key)


@pytest.mark.services
def test_bridge_publishes_celery_messages_to_the_quality_queue(
    redis_url: str,
    element: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from redis import Redis

    from churnops_common.bus.celery_bus import CeleryBus
    from churnops_common.celery_app import make_celery
    from churnops_common.settings import Settings

    db_url = redis_url.rsplit("/", 1)[0] + "/4"
    client = Redis.from_url(db_url)
    client.delete("quality")
    app = make_celery("test-bridge", Settings(redis_url=db_url, _env_file=None))
    key = f"test:minio:{uuid.uuid4().hex}"
    bridge = Bridge(client, CeleryBus(app), key, "landing")
    client.rpush(key, element)
    assert bridge.step(timeout=1)
    [raw] = client.lrange("quality", 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == "churnops.quality.on_data_landed"
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args[0]["object"]["key"] == "new_data/2026-11-29 batch 01.csv"
    client.delete("quality", key)
    client.close()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"s3__object__size": "abc"}, "size"),
        ({"s3__object__size": -1}, "size"),
        ({"s3__object__contentType": 5}, "content_type"),
        ({"s3__object__eTag": None}, "no eTag"),
    ],
)
def test_invalid_record_fields_are_malformed_not_crashes(
    element: bytes, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(MalformedNotification, match=reason):
        parse_notification(_with(element, **changes), "landing")


@pytest.mark.services
def test_a_bad_element_left_in_processing_is_parked_on_recovery(
    redis_client: object,
    element: bytes,
) -> None:
    from redis import Redis

    assert isinstance(redis_client, Redis)
    key = f"test:minio:{uuid.uuid4().hex}"
    bus = RecordingBus()
    bridge = Bridge(redis_client, bus, key, "landing")
    bad = _with(element, s3__object__size="abc")
    redis_client.rpush(bridge.processing_key, bad, element)
    assert bridge.recover() == 2
    assert len(bus.events) == 1
    assert redis_client.lrange(bridge.parked_key, 0, -1) == [bad]
    assert redis_client.llen(bridge.processing_key) == 0
    redis_client.delete(key, bridge.processing_key, bridge.parked_key)


@pytest.mark.services
def test_an_undecodable_element_is_parked_and_recovery_goes_on(
    redis_client: object,
    element: bytes,
) -> None:
    from redis import Redis

    assert isinstance(redis_client, Redis)
    key = f"test:minio:{uuid.uuid4().hex}"
    bus = RecordingBus()
    bridge = Bridge(redis_client, bus, key, "landing")
    huge = b'[{"Event": [], "n": ' + b"7" * 5000 + b"}]"
    redis_client.rpush(key, huge, element)
    assert bridge.step(timeout=1) and bridge.step(timeout=1)
    assert redis_client.lrange(bridge.parked_key, 0, -1) == [huge]
    assert redis_client.llen(bridge.processing_key) == 0
    assert bridge.recover() == 0 and len(bus.events) == 1
    redis_client.delete(key, bridge.processing_key, bridge.parked_key)
