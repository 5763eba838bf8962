"""A paginated JSON API: pages of records, gathered into batches of about `batch_rows` rows.

Retries are urllib3's `Retry` mounted on a requests session: 429 and 503 wait for the server's
`Retry-After`, other 5xx back off exponentially; a page that still fails after the last retry
ends the ingest with what the server said.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from churnops_common.errors import PermanentError
from churnops_ingest.sources import HttpSpec
from churnops_ingest.sql_source import SourceUnreachable

log = logging.getLogger(__name__)

MAX_PAGES = 100_000  # a cursor API that never ends is a bug, not a large table
RETRY_STATUSES = (429, 500, 502, 503, 504)


class ApiFailed(PermanentError):
    """The API refused the request or answered with something that is not a page of records."""


@dataclass(frozen=True)
class HttpOptions:
    token: str
    timeout_s: float
    retries: int
    backoff_s: float
    batch_rows: int


def session_with_retries(options: HttpOptions) -> requests.Session:
    retry = Retry(
        total=options.retries,
        connect=options.retries,
        read=options.retries,
        status=options.retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        backoff_factor=options.backoff_s,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back and is reported with its status
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = "application/json"
    if options.token:
        session.headers["Authorization"] = f"Bearer {options.token}"
    return session


def api_batches(
    spec: HttpSpec, logical_date: date, options: HttpOptions, source: str
) -> Iterator[pa.Table]:
    """Every page's records, yielded as Arrow tables of about `batch_rows` rows."""
    pending: list[dict[str, Any]] = []
    with session_with_retries(options) as session:
        for records in _pages(session, spec, logical_date, options, source):
            pending.extend(records)
            if len(pending) >= options.batch_rows:
                yield pa.Table.from_pylist(pending)
                pending = []
    if pending:
        yield pa.Table.from_pylist(pending)


def _pages(
    session: requests.Session,
    spec: HttpSpec,
    logical_date: date,
    options: HttpOptions,
    source: str,
) -> Iterator[list[dict[str, Any]]]:
    paging = spec.pagination
    params: dict[str, Any] = {
        key: value.format(logical_date=logical_date.isoformat())
        if isinstance(value, str)
        else value
        for key, value in spec.params.items()
    }
    if paging.style == "page" and paging.size_param:
        params[paging.size_param] = paging.size
    page, cursor, seen = paging.first, None, set()
    for _ in range(MAX_PAGES):
        if paging.style == "page":
            params[paging.param] = page
        elif paging.style == "cursor" and cursor is not None:
            params[paging.param] = cursor
        body = _get(session, spec.url, params, options.timeout_s, source)
        records = _records(body, spec.records, source)
        if records:
            yield records
        if paging.style == "none":
            return
        if paging.style == "page":
            if len(records) < paging.size:
                return
            page += 1
            continue
        cursor = _dig(body, paging.next) if isinstance(body, dict) else None
        if cursor in (None, ""):
            return
        if cursor in seen:
            raise ApiFailed(f"source {source!r}: the API returned cursor {cursor!r} twice")
        seen.add(cursor)
    raise ApiFailed(f"source {source!r}: more than {MAX_PAGES} pages: is pagination configured?")


def _get(
    session: requests.Session, url: str, params: dict[str, Any], timeout_s: float, source: str
) -> Any:
    try:
        response = session.get(url, params=params, timeout=timeout_s)
    except requests.exceptions.RetryError as exc:  # retries spent on a retryable status
        raise SourceUnreachable(f"source {source!r}: the API kept failing: {exc}") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise SourceUnreachable(f"source {source!r}: cannot reach {url}: {exc}") from exc
    if response.status_code in RETRY_STATUSES:
        raise SourceUnreachable(
            f"source {source!r}: the API answered {response.status_code} after"
            f" {len(response.raw.retries.history) if response.raw.retries else 0} retries"
        )
    if response.status_code in (401, 403):
        raise ApiFailed(
            f"source {source!r}: the API answered {response.status_code}: check the bearer token"
        )
    if not response.ok:
        raise ApiFailed(
            f"source {source!r}: the API answered {response.status_code}: {response.text[:200]}"
        )
    try:
        return response.json()
    except ValueError as exc:
        raise ApiFailed(f"source {source!r}: the API answered something other than JSON") from exc


def _records(body: Any, path: str, source: str) -> list[dict[str, Any]]:
    records = _dig(body, path) if path else body
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        where = f"at {path!r}" if path else "at the top level"
        raise ApiFailed(f"source {source!r}: no list of JSON objects {where} of the response")
    return records


def _dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body
