"""The HTTP source against a real local server that paginates, rate-limits once and fails once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from churnops_common.errors import is_transient
from churnops_common.settings import Settings
from churnops_common.storage import ObjectStore, object_store_from_settings
from churnops_ingest.http_source import ApiFailed
from churnops_ingest.ingest_source import ingest
from churnops_ingest.sources import Source, SourceConfigError, SourcesFile
from churnops_ingest.sql_source import SourceUnreachable

DAY = date(2026, 12, 1)
TOKEN = "test-token-123"
RECORDS = [{"customer_id": f"C{i:05d}", "churned": i % 3 == 0, "score": i / 7} for i in range(1050)]


@dataclass
class Api:
    """What the server was asked, and the faults it still has to play (one each)."""

    url: str = ""
    requests: list[tuple[float, dict[str, list[str]], int]] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)  # page/cursor value -> status, once
    always: int | None = None  # answer this status to every request


def _answer(api: Api, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
    if api.always is not None:
        return api.always, {"error": "down"}, {}
    first = "1" if path == "/pages" else "0"
    where = query.get("page", query.get("cursor", [first]))[0]
    status = api.faults.pop(where, None)
    if status == 429:
        return 429, {"error": "slow down"}, {"Retry-After": "1"}
    if status is not None:
        return status, {"error": "boom"}, {}
    if path == "/pages":
        size = int(query["per_page"][0])
        start = (int(where) - 1) * size
        return 200, {"data": RECORDS[start : start + size]}, {}
    start = int(where)  # cursor style: the cursor is the offset of the next record
    body = {"items": RECORDS[start : start + 400], "meta": {}}
    if start + 400 < len(RECORDS):
        body["meta"]["next_cursor"] = str(start + 400)
    return 200, body, {}


@pytest.fixture
def api() -> Iterator[Api]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, body, headers = 401, {"error": "no token"}, {}
            else:
                status, body, headers = _answer(state, parts.path, query)
            state.requests.append((time.monotonic(), query, status))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def settings(embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CRM_API_TOKEN", TOKEN)
    return embedded_settings.model_copy(
        update={"ingest_batch_rows": 300, "ingest_http_backoff_s": 0.05, "ingest_http_retries": 3}
    )


@pytest.fixture
def store(settings: Settings) -> ObjectStore:
    store = object_store_from_settings(settings)
    store.ensure_buckets(settings.buckets)
    return store


def _source(url: str, **http: Any) -> Source:
    spec = {"url": url, "token_env": "CRM_API_TOKEN", **http}
    return Source.model_validate({"kind": "labels", "http": spec})


def _landed(store: ObjectStore, key: str) -> pd.DataFrame:
    with store.local_path("landing", key) as path:
        return pd.read_parquet(path)


def test_pages_with_one_rate_limit_and_one_failure_land_every_record(
    api: Api, settings: Settings, store: ObjectStore
) -> None:
    api.faults = {"2": 429, "4": 500}
    pagination = {"style": "page", "param": "page", "size_param": "per_page", "size": 200}
    source = _source(f"{api.url}/pages", records="data", pagination=pagination)

    result = ingest(store, settings, "crm_api", source, DAY)

    assert result.created and result.rows == len(RECORDS)
    frame = _landed(store, result.object.key)
    assert frame["customer_id"].tolist() == [r["customer_id"] for r in RECORDS]
    pages = [(query["page"][0], status) for _, query, status in api.requests]
    assert pages == [
        ("1", 200), ("2", 429), ("2", 200), ("3", 200), ("4", 500), ("4", 200),
        ("5", 200), ("6", 200),
    ]  # fmt: skip
    # The retry after the 429 waited for the server's Retry-After (1 s).
    (limited,) = [i for i, (_, _, status) in enumerate(api.requests) if status == 429]
    assert api.requests[limited + 1][0] - api.requests[limited][0] >= 0.9


def test_cursor_pagination_follows_the_next_cursor_until_none(
    api: Api, settings: Settings, store: ObjectStore
) -> None:
    pagination = {"style": "cursor", "param": "cursor", "next": "meta.next_cursor"}
    source = _source(f"{api.url}/cursor", records="items", pagination=pagination)
    result = ingest(store, settings, "crm_api", source, DAY)
    assert result.rows == len(RECORDS)
    cursors = [query.get("cursor", ["(none)"])[0] for _, query, _ in api.requests]
    assert cursors == ["(none)", "400", "800"]
    # Same answers, same snapshot: nothing new.
    assert not ingest(store, settings, "crm_api", source, DAY).created


def test_an_api_that_keeps_failing_is_transient_and_lands_nothing(
    api: Api, settings: Settings, store: ObjectStore
) -> None:
    api.always = 503
    with pytest.raises(SourceUnreachable, match="503") as caught:
        ingest(store, settings, "crm_api", _source(f"{api.url}/pages", records="data"), DAY)
    assert is_transient(caught.value)
    assert len(api.requests) == 1 + settings.ingest_http_retries
    assert list(store.list_objects("landing")) == []


def test_a_wrong_token_or_shape_is_permanent(
    api: Api, settings: Settings, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ApiFailed, match="no list of JSON objects at 'rows'"):
        ingest(store, settings, "crm_api", _source(f"{api.url}/pages", records="rows"), DAY)
    monkeypatch.setenv("CRM_API_TOKEN", "wrong")
    with pytest.raises(ApiFailed, match="401: check the bearer token"):
        ingest(store, settings, "crm_api", _source(f"{api.url}/pages", records="data"), DAY)
    monkeypatch.delenv("CRM_API_TOKEN")
    with pytest.raises(SourceConfigError, match="CRM_API_TOKEN"):
        ingest(store, settings, "crm_api", _source(f"{api.url}/pages", records="data"), DAY)


def test_the_sources_file_refuses_credentials() -> None:
    with pytest.raises(ValueError, match="url_env"):
        SourcesFile.model_validate(
            {"sources": {"w": {"kind": "new_data", "sql": {
                "url": "postgresql://u:pw@host/db", "query": "SELECT 1"}}}}
        )  # fmt: skip
    with pytest.raises(ValueError, match="token_env"):
        SourcesFile.model_validate(
            {"sources": {"a": {"kind": "labels", "http": {"url": "https://u:p@api.example.com"}}}}
        )
