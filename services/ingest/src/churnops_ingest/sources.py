"""The sources file: named warehouse queries and HTTP APIs, each with its kind and schedule.

Credentials never live in it: a database URL comes from the environment variable a source names
(`url_env`), an API token from `token_env` or INGEST_API_TOKEN. A literal `url` with a password in
it is refused, so the file can be committed and shown.

```yaml
sources:
  crm_customers:
    kind: new_data
    schedule: "@daily"
    sql:
      url_env: WAREHOUSE_URL
      query: SELECT * FROM customers WHERE snapshot_date = :logical_date
  crm_outcomes:
    kind: labels
    schedule: "0 6 * * *"
    http:
      url: https://crm.example.com/api/outcomes
      records: data
      pagination: {style: cursor, param: cursor, next: meta.next_cursor}
      token_env: CRM_API_TOKEN
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from churnops_common.errors import PermanentError
from churnops_common.events import DataKind

SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200)]


class SourceConfigError(PermanentError):
    """The sources file, a source in it or its environment is wrong; the message says what."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SqlSpec(_Strict):
    """A SQLAlchemy URL (from the environment) and a query; `:logical_date` is bound if used."""

    url_env: str | None = None
    url: str | None = None  # only without a password: e.g. a local DuckDB or SQLite file
    query: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_url(self) -> SqlSpec:
        if (self.url_env is None) == (self.url is None):
            raise ValueError("give exactly one of url_env (an environment variable) and url")
        return self

    def resolve_url(self) -> str:
        if self.url is not None:
            return self.url
        assert self.url_env is not None
        value = os.environ.get(self.url_env, "")
        if not value:
            raise SourceConfigError(
                f"environment variable {self.url_env} (the database URL) is unset"
            )
        return value


class Pagination(_Strict):
    """`page`: ?<param>=1,2,... until a short page; `cursor`: ?<param>=<next> until none."""

    style: Literal["page", "cursor", "none"] = "page"
    param: str = "page"
    size_param: str | None = "per_page"
    size: int = Field(500, ge=1, le=100_000)
    first: int = 1  # the first page number
    next: str = "next_cursor"  # dotted path of the next cursor in a cursor-style response


class HttpSpec(_Strict):
    """A JSON API: GET `url` with `params`, records at the dotted path `records` of each page."""

    url: str = Field(pattern=r"^https?://")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    records: str = ""  # "" : the response itself is the list of records
    pagination: Pagination = Pagination()
    token_env: str | None = None  # default: the INGEST_API_TOKEN setting


class Source(_Strict):
    kind: DataKind
    schedule: str | None = None  # an Airflow schedule (cron or @daily); None: on demand only
    sql: SqlSpec | None = None
    http: HttpSpec | None = None

    @model_validator(mode="after")
    def _one_spec(self) -> Source:
        if (self.sql is None) == (self.http is None):
            raise ValueError("give exactly one of `sql` and `http`")
        return self


class SourcesFile(_Strict):
    sources: dict[SourceName, Source] = Field(default_factory=dict)

    @field_validator("sources", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return {} if value is None else value  # `sources:` with every example commented out

    @model_validator(mode="after")
    def _no_credentials(self) -> SourcesFile:
        """The file is configuration, fit to commit: secrets come from the environment."""
        for name, source in self.sources.items():
            if source.sql is not None and source.sql.url and _has_password(source.sql.url):
                raise ValueError(
                    f"{name}: a password in `url`: name an environment variable"
                    " holding the URL in `url_env` instead"
                )
            if source.http is not None and urlsplit(source.http.url).username:
                raise ValueError(f"{name}: credentials in the API url: name `token_env` instead")
        return self


def load_sources(path: Path) -> SourcesFile:
    """The parsed file; a missing, unreadable or invalid file is a SourceConfigError."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceConfigError(
            f"sources file {path} not found: set INGEST_SOURCES_FILE or pass --url/--query"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourceConfigError(f"sources file {path} is unreadable: {exc}") from exc
    try:
        return SourcesFile.model_validate(document or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "<root>"
        raise SourceConfigError(f"sources file {path}: {where}: {first['msg']}") from None


def find_source(path: Path, name: str) -> Source:
    sources = load_sources(path).sources
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise SourceConfigError(f"no source {name!r} in {path} (known: {known})")
    return sources[name]


def _has_password(url: str) -> bool:
    try:
        return bool(make_url(url).password)
    except ArgumentError:
        return False


def redacted(url: str) -> str:
    """A database URL fit for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"
