"""Reading a landed file safely: cheap checks before parsing, then bounded chunks.

Every problem found here is a `FileProblem` with a one-line reason a person can act on and
details (which column, how many rows, example values) for the rejection event and the run row.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnops_common.settings import Settings
from churnops_common.tabular import iter_frames, table_format

CHUNK_ROWS = 200_000
_BLOCK = 1 << 20
_OTHER_DELIMITERS = (";", "\t", "|")
_ZIP_MAGIC = b"PK\x03\x04"


class FileProblem(Exception):
    """A file that cannot be accepted; `reason` is the one line shown to people."""

    def __init__(self, code: str, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.details: dict[str, Any] = {"code": code, **details}


@dataclass(frozen=True)
class FileLimits:
    """Bounds checked before any row is parsed, each named after its setting in reasons."""

    max_bytes: int
    max_rows: int = 50_000_000
    max_columns: int = 5_000
    max_header_bytes: int = 1 << 20

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLimits:
        return cls(
            max_bytes=int(settings.quality_max_file_mb * 2**20),
            max_rows=settings.quality_max_rows,
            max_columns=settings.quality_max_columns,
            max_header_bytes=settings.quality_max_header_kb * 1024,
        )


@dataclass(frozen=True)
class FileFacts:
    format: str  # "csv" | "parquet"
    columns: list[str]
    size: int
    parquet_rows: int | None = None
    notes: list[str] = field(default_factory=list)


def precheck(path: Path, limits: FileLimits, id_column: str | None = None) -> FileFacts:
    """Size, emptiness, encoding, delimiter, header and the limits, without parsing any row."""
    size = path.stat().st_size
    check_size(size, limits.max_bytes)
    if table_format(path) == "parquet":
        facts = _parquet_facts(path, size)
        check_columns(len(facts.columns), limits)
        check_names(facts.columns)
        if facts.parquet_rows is not None and facts.parquet_rows > limits.max_rows:
            raise FileProblem(
                "too_many_rows",
                f"the file declares {facts.parquet_rows:,} rows, over the {limits.max_rows:,}"
                " limit (QUALITY_MAX_ROWS); split it into smaller files",
                rows=facts.parquet_rows,
            )
        return facts
    with path.open("rb") as handle:
        if handle.read(4) == _ZIP_MAGIC:
            raise FileProblem(
                "not_a_table",
                "this is a ZIP/Excel file, not CSV or Parquet: export it as CSV (UTF-8) or Parquet",
            )
    check_header_length(path, limits)
    check_utf8(path)
    return _csv_facts(path, size, id_column, limits)


def check_size(size: int, max_bytes: int) -> None:
    """Empty or over the limit: decided from the size alone (before any download)."""
    if size == 0:
        raise FileProblem("empty_file", "empty file (0 bytes): nothing to validate")
    if size > max_bytes:
        raise FileProblem(
            "file_too_large",
            f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit"
            " (QUALITY_MAX_FILE_MB); split it into smaller files",
            size_bytes=size,
            max_bytes=max_bytes,
        )


def check_columns(count: int, limits: FileLimits) -> None:
    if count > limits.max_columns:
        raise FileProblem(
            "too_many_columns",
            f"the file has {count:,} columns, over the {limits.max_columns:,} limit"
            " (QUALITY_MAX_COLUMNS)",
            column_count=count,
        )


def check_header_length(path: Path, limits: FileLimits) -> None:
    """A header line over the limit is refused from its first bytes (never read whole)."""
    with path.open("rb") as handle:
        head = handle.read(limits.max_header_bytes + 1)
    if len(head) > limits.max_header_bytes and b"\n" not in head:
        raise FileProblem(
            "header_too_long",
            f"the header line is longer than {limits.max_header_bytes // 1024:,} KiB"
            " (QUALITY_MAX_HEADER_KB): is this a table with one row per line?",
        )


def check_names(header: list[str]) -> None:
    """A NUL byte in a column name is refused: no store or report can keep it as text."""
    bad = [name for name in header if "\x00" in name]
    if bad:
        shown = ", ".join(repr(name[:60]) for name in bad[:5])
        raise FileProblem(
            "bad_column_name",
            f"column name(s) with a NUL byte: {shown}; rename them",
            columns=[name.replace("\x00", "\\x00") for name in bad[:50]],
        )


def duplicate_names(header: list[str]) -> list[str]:
    """Names that occur more than once, in one pass (a header may have many columns)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in header:
        (repeated if name in seen else seen).add(name)
    return sorted(repeated)


def check_utf8(path: Path) -> None:
    """Stream the file through a strict UTF-8 decoder; say where the first bad byte is."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    newlines = 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                where = offset + exc.start
                line = newlines + block.count(b"\n", 0, exc.start) + 1
                bad = block[exc.start : exc.start + 1].hex()
                raise FileProblem(
                    "not_utf8",
                    f"not UTF-8: byte 0x{bad} at offset {where} (line {line}) cannot be decoded;"
                    " re-save the file as UTF-8",
                    byte_offset=where,
                    line=line,
                    byte=f"0x{bad}",
                ) from None
            offset += len(block)
            newlines += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileProblem(
                "not_utf8",
                "not UTF-8: the file ends inside a multi-byte character; re-save the file as UTF-8",
                byte_offset=offset,
            ) from None


def _csv_facts(path: Path, size: int, id_column: str | None, limits: FileLimits) -> FileFacts:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header_line = handle.readline()
        has_rows = any(line.strip() for line in _first_lines(handle, 50))
    if not header_line.strip():
        raise FileProblem("empty_file", "empty file: no header line, only blank space")
    header = next(csv.reader([header_line]))
    check_columns(len(header), limits)
    check_names(header)
    if len(header) == 1:
        _check_delimiter(header_line.rstrip("\r\n"), id_column)
    duplicates = duplicate_names(header)
    if duplicates:
        shown = ", ".join(repr(d[:60]) for d in duplicates[:10])
        more = f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else ""
        raise FileProblem(
            "duplicate_columns",
            f"duplicate column names in the header: {shown}{more}",
            columns=duplicates[:50],
        )
    if not has_rows:
        raise FileProblem(
            "header_only", f"header only: {len(header)} columns and no data rows", columns=header
        )
    return FileFacts("csv", header, size)


def _first_lines(handle: Any, limit: int) -> Iterator[str]:
    for number, line in enumerate(handle):
        if number >= limit:
            return
        yield line


def _check_delimiter(header: str, id_column: str | None) -> None:
    """A one-column header that holds another delimiter is a file exported with the wrong one."""
    for delimiter in _OTHER_DELIMITERS:
        if delimiter in header:
            columns = header.split(delimiter)
            shown = "tab" if delimiter == "\t" else f"'{delimiter}'"
            reason = (
                f"wrong delimiter: the file looks {shown}-delimited (header {header!r}"
                f" reads as one column); export it comma-separated"
            )
            if id_column and id_column not in columns:
                reason += f"; it also has no '{id_column}' id column (ID_COLUMN)"
            raise FileProblem(
                "wrong_delimiter",
                reason,
                delimiter=delimiter,
                columns=columns,
                missing_id=bool(id_column and id_column not in columns),
            )


def _parquet_facts(path: Path, size: int) -> FileFacts:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        raise FileProblem(
            "unreadable_parquet", f"not a readable Parquet file: {exc}".splitlines()[0]
        ) from None
    columns = list(meta.schema_arrow.names)
    _check_flat(meta.schema_arrow)
    if meta.metadata.num_rows == 0:
        raise FileProblem(
            "header_only", f"header only: {len(columns)} columns and no rows", columns=columns
        )
    return FileFacts("parquet", columns, size, parquet_rows=meta.metadata.num_rows)


def _check_flat(schema: Any) -> None:
    """Only flat columns can be validated: a struct, list, map or union column is a file
    problem named after its column, found from the footer before any row is read."""
    import pyarrow as pa

    nested = [f for f in schema if pa.types.is_nested(f.type)]
    if not nested:
        return
    shown = "; ".join(
        f"column '{f.name}' is nested ({_nested_kind(f.type)}: {f.type})" for f in nested[:5]
    )
    more = f" and {len(nested) - 5} more" if len(nested) > 5 else ""
    raise FileProblem(
        "nested_column",
        f"{shown}{more}: only flat columns (numbers, text, booleans, dates) can be validated;"
        " flatten it into one column per field before landing",
        columns=[f.name for f in nested],
    )


def _nested_kind(arrow_type: Any) -> str:
    import pyarrow as pa

    for kind, test in (
        ("struct", pa.types.is_struct),
        ("map", pa.types.is_map),
        ("union", pa.types.is_union),
    ):
        if test(arrow_type):
            return kind
    return "list"


def iter_table(
    path: Path, facts: FileFacts, id_column: str | None, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """Chunks of the table, typed as pandas types them; the id column stays text (leading
    zeros kept). Read with the platform's one reader (`churnops_common.tabular`)."""
    ids = [id_column] if id_column and id_column in facts.columns else []
    try:
        yield from iter_frames(path, chunk_rows or CHUNK_ROWS, text_columns=ids)
    except (pd.errors.ParserError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise FileProblem("malformed_csv", f"malformed CSV: {_first_line(exc)}") from None


def read_whole(path: Path, facts: FileFacts, id_column: str | None) -> pd.DataFrame:
    chunks = list(iter_table(path, facts, id_column, chunk_rows=1_000_000))
    return pd.concat(chunks, ignore_index=True) if len(chunks) != 1 else chunks[0]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
