"""The MinIO bridge: MinIO's Redis notifications (access format) in, DataLanded events out.

MinIO RPUSHes one JSON element per event to a Redis list. A Celery worker cannot read that list
(it is not a Celery message), so this process translates it, reliably:

1. BLMOVE the oldest element to a processing list (it is never only in memory);
2. publish a DataLanded per created object in `landing/{new_data,labels,training}/`;
3. LREM it from the processing list.

On start, whatever a crash left in the processing list is published again (the subscribers'
ledgers drop duplicates). A malformed element is moved to a parked list with a log line, and the
bridge goes on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from churnops_common.bus.base import Bus
from churnops_common.events import DataKind, DataLanded, ObjectRef
from churnops_common.storage import InvalidObjectKey, validate_key

if TYPE_CHECKING:  # the client is passed in: importing redis costs commands that never bridge
    from redis import Redis

log = logging.getLogger(__name__)

KIND_PREFIXES: dict[str, DataKind] = {
    "new_data/": "new_data",
    "labels/": "labels",
    "training/": "training",
}


class MalformedNotification(ValueError):
    """An element that is not a MinIO access-format notification."""


def classify(key: str) -> DataKind | None:
    """The kind of a landing key by its folder, or None for keys the platform does not watch."""
    for prefix, kind in KIND_PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return kind
    return None


def parse_notification(raw: bytes | str, landing_bucket: str) -> list[DataLanded]:
    """Events for one list element; [] when it only holds events the platform ignores."""
    try:
        document = json.loads(raw)
    # Any decoding error parks the element: bad JSON and bad UTF-8, but also an integer past
    # Python's digit limit (a plain ValueError) or nesting deeper than the recursion limit.
    except (ValueError, RecursionError) as exc:
        raise MalformedNotification(f"not decodable JSON: {str(exc)[:200]}") from exc
    # Access format: a JSON array of {"Event": [records], "EventTime": "..."}.
    if not isinstance(document, list):
        raise MalformedNotification("expected a JSON array (MinIO 'access' format)")
    events: list[DataLanded] = []
    for entry in document:
        if not isinstance(entry, dict) or not isinstance(entry.get("Event"), list):
            raise MalformedNotification("array entry without an 'Event' list")
        for record in entry["Event"]:
            event = _event_from_record(record, landing_bucket)
            if event is not None:
                events.append(event)
    return events


def _event_from_record(record: Any, landing_bucket: str) -> DataLanded | None:
    try:
        name = str(record["eventName"])
        bucket = str(record["s3"]["bucket"]["name"])
        obj = record["s3"]["object"]
        raw_key = str(obj["key"])
    except (KeyError, TypeError) as exc:
        raise MalformedNotification(f"record lacks {exc}") from exc
    if not name.startswith("s3:ObjectCreated:"):
        log.debug("ignoring %s", name)
        return None
    if bucket != landing_bucket:
        log.info("ignoring object in bucket %r (watching %r)", bucket, landing_bucket)
        return None
    key = unquote_plus(raw_key)  # MinIO query-escapes keys: '+' is a space, %2F a slash
    try:
        validate_key(key)
    except InvalidObjectKey as exc:
        raise MalformedNotification(str(exc)) from exc
    kind = classify(key)
    if kind is None:
        log.info("ignoring %s/%s: not under %s", bucket, key, ", ".join(KIND_PREFIXES))
        return None
    etag = str(obj.get("eTag") or "").strip('"')
    if not etag:  # half of the idempotency key: without it, an overwrite looks like a duplicate
        raise MalformedNotification(f"created object {key!r} has no eTag")
    try:
        ref = ObjectRef(bucket=bucket, key=key, etag=etag, size=obj.get("size"))
        return DataLanded.start_chain(
            ref.versioned_uri,
            object=ref,
            kind=kind,
            content_type=obj.get("contentType"),
            source="notification",
        )
    except ValidationError as exc:  # e.g. a size that is not a count of bytes
        problem = exc.errors()[0]
        raise MalformedNotification(
            f"invalid record for {key!r}: {'.'.join(map(str, problem['loc']))}: {problem['msg']}"
        ) from exc


@dataclass
class BridgeStats:
    elements: int = 0
    published: int = 0
    parked: int = 0
    redriven: int = 0


class Bridge:
    def __init__(self, redis: Redis, bus: Bus, source_key: str, landing_bucket: str) -> None:
        self.redis = redis
        self.bus = bus
        self.source_key = source_key
        self.processing_key = f"{source_key}:processing"
        self.parked_key = f"{source_key}:parked"
        self.landing_bucket = landing_bucket
        self.stats = BridgeStats()

    def recover(self) -> int:
        """Publish again what a crash left in the processing list."""
        leftovers: list[bytes] = self.redis.lrange(self.processing_key, 0, -1)  # type: ignore[assignment]
        for element in leftovers:
            self._handle(element)
        self.stats.redriven += len(leftovers)
        if leftovers:
            log.warning("re-drove %d element(s) left in %s", len(leftovers), self.processing_key)
        return len(leftovers)

    def step(self, timeout: float = 1.0) -> bool:
        """Move and handle one element; False when none arrived within the timeout."""
        element = self.redis.blmove(
            self.source_key,
            self.processing_key,
            timeout,  # type: ignore[arg-type]
            "LEFT",
            "RIGHT",
        )
        if element is None:
            return False
        self._handle(element)  # type: ignore[arg-type]
        return True

    def _handle(self, element: bytes) -> None:
        self.stats.elements += 1
        try:
            events = parse_notification(element, self.landing_bucket)
        except MalformedNotification as exc:
            log.error("parked malformed notification (%s): %.200r", exc, element)
            pipe = self.redis.pipeline()
            pipe.rpush(self.parked_key, element)
            pipe.lrem(self.processing_key, 1, element)  # type: ignore[arg-type]
            pipe.execute()
            self.stats.parked += 1
            return
        for event in events:  # a publish failure leaves the element in the processing list
            self.bus.publish(event)
            log.info("DataLanded %s (%s)", event.object.versioned_uri, event.kind)
        self.stats.published += len(events)
        self.redis.lrem(self.processing_key, 1, element)  # type: ignore[arg-type]

    def run(self, stop: threading.Event | None = None, poll_s: float = 1.0) -> BridgeStats:
        """Run until `stop` is set; survives broker hiccups by retrying the element it holds."""
        stop = stop or threading.Event()
        self.recover()
        delay = 1.0
        while not stop.is_set():
            try:
                self.step(timeout=poll_s)
                delay = 1.0
            except Exception as exc:  # Redis or broker away: keep the element, back off, retry
                log.warning("bridge error, retrying in %.0fs: %s", delay, exc)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
                self._safe_recover()
        return self.stats

    def _safe_recover(self) -> None:
        try:
            self.recover()
        except Exception as exc:
            log.warning("recovery failed, will try again: %s", exc)


def wait_for_redis(redis: Redis, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            redis.ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
