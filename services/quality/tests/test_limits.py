"""Limits that bound memory before reading: each over-limit file is a rejection naming its
setting, decided from the header or the Parquet footer."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnops_quality.reading import FileLimits, FileProblem, duplicate_names, precheck

LIMITS = FileLimits(max_bytes=1 << 30, max_rows=1000, max_columns=50, max_header_bytes=4096)


def _problem(path: Path, limits: FileLimits = LIMITS) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        precheck(path, limits)
    return caught.value


def test_too_many_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(60)) + "\n" + ",".join("1" * 60) + "\n")
    problem = _problem(path)
    assert problem.code == "too_many_columns" and "QUALITY_MAX_COLUMNS" in problem.reason


def test_header_longer_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "long-header.csv"
    path.write_text("x" * 10_000 + "\n1\n")
    problem = _problem(path)
    assert problem.code == "header_too_long" and "QUALITY_MAX_HEADER_KB" in problem.reason


def test_parquet_rows_from_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "long.parquet"
    pq.write_table(pa.table({"customer_id": list(range(1500))}), path)
    problem = _problem(path)
    assert problem.code == "too_many_rows" and "1,500 rows" in problem.reason
    assert "QUALITY_MAX_ROWS" in problem.reason


def test_within_limits_passes(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("customer_id,age\na,1\n")
    assert precheck(path, LIMITS).columns == ["customer_id", "age"]


def test_duplicate_names_in_one_pass() -> None:
    header = [f"c{i}" for i in range(200_000)] + ["c7", "c7", "c9"]
    assert duplicate_names(header) == ["c7", "c9"]


def test_duplicate_header_reason_is_bounded(tmp_path: Path) -> None:
    names = [f"{'n' * 200}{i}" for i in range(30)]
    path = tmp_path / "dups.csv"
    path.write_text(",".join(names + names) + "\n" + ",".join("1" * 60) + "\n")
    limits = FileLimits(max_bytes=1 << 30, max_columns=100, max_header_bytes=1 << 20)
    problem = _problem(path, limits)
    assert problem.code == "duplicate_columns" and "and 20 more" in problem.reason
    assert len(problem.reason) < 1200
