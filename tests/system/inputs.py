"""Files the scenarios drop: synthetic batches and one file per kind of bad input.

Every bad case names the landing key it is dropped under and the words its rejection reason
must contain, so a test fails when a file is rejected for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnops_common.synthetic import generate

ID, TARGET = "customer_id", "churned"


def batch_frame(
    rows: int, seed: int, drift: float = 0.0, target: bool = False, loyalty: float = 0.0
) -> pd.DataFrame:
    frame = generate(rows, seed=seed, drift=drift, loyalty=loyalty)
    return frame if target else frame.drop(columns=[TARGET])


def batch_csv(
    folder: Path,
    name: str,
    rows: int,
    seed: int,
    drift: float = 0.0,
    target: bool = False,
    loyalty: float = 0.0,
) -> Path:
    path = folder / name
    batch_frame(rows, seed, drift, target, loyalty).to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class BadInput:
    case: str
    key: str
    expected: tuple[str, ...]  # fragments the rejection reason must contain
    write: Callable[[Path], object]


def _csv(frame: pd.DataFrame, **options: object) -> Callable[[Path], object]:
    return lambda path: frame.to_csv(path, index=False, **options)  # type: ignore[call-overload]


def _text_in_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["monthly_charges"] = frame["monthly_charges"].astype(object)
    frame.loc[3, "monthly_charges"] = "twelve"
    return frame


def _duplicate_ids(frame: pd.DataFrame) -> pd.DataFrame:
    ids = frame[ID].copy()
    ids.iloc[5] = ids.iloc[0]
    return frame.assign(**{ID: ids})


def _unseen_region(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[:9, "region"] = "atlantis"
    return frame


def _not_utf8(frame: pd.DataFrame) -> bytes:
    frame = frame.copy()
    frame.loc[2, "region"] = "montréal"
    return frame.to_csv(index=False).encode("latin-1")


def _ragged(frame: pd.DataFrame) -> str:
    lines = frame.to_csv(index=False).splitlines()
    lines[4] += ",extra,fields,here"
    return "\n".join(lines) + "\n"


def _huge(frame: pd.DataFrame, limit_mb: float) -> Callable[[Path], object]:
    """A valid CSV just over the size limit (rejected from its size, before any download)."""

    def write(path: Path) -> None:
        header, row = frame.to_csv(index=False).splitlines()[:2]
        block = ((row + "\n") * 10_000).encode()
        with path.open("wb") as handle:
            handle.write((header + "\n").encode())
            while handle.tell() <= limit_mb * 2**20:
                handle.write(block)

    return write


def bad_inputs(frame: pd.DataFrame, labels: pd.DataFrame, limit_mb: float) -> list[BadInput]:
    """The brief's "bad input" list, one landed file each; `frame` is a good new_data batch."""
    null_column = frame.assign(tenure_months=float("nan"))
    return [
        BadInput(
            "empty file", "new_data/bad/empty.csv", ("empty file",), lambda p: p.write_bytes(b"")
        ),
        BadInput(
            "header only", "new_data/bad/header-only.csv", ("header only",), _csv(frame.head(0))
        ),
        BadInput(
            "wrong delimiter",
            "new_data/bad/semicolons.csv",
            ("wrong delimiter", "';'"),
            _csv(frame, sep=";"),
        ),
        BadInput(
            "missing id column",
            "new_data/bad/no-id.csv",
            (f"no '{ID}' id column",),
            _csv(frame.drop(columns=[ID])),
        ),
        BadInput(
            "missing feature column",
            "new_data/bad/no-contract.csv",
            ("missing 1 column(s)", "'contract'"),
            _csv(frame.drop(columns=["contract"])),
        ),
        BadInput(
            "missing target (labels)",
            "labels/bad/no-target.csv",
            (f"'{TARGET}' target column",),
            _csv(labels[[ID]]),
        ),
        BadInput(
            "bad target values (labels)",
            "labels/bad/maybe.csv",
            (f"column '{TARGET}'", "'maybe'"),
            _csv(
                labels.assign(
                    **{TARGET: labels[TARGET].astype(object).where(labels.index > 3, "maybe")}
                )
            ),
        ),
        BadInput(
            "text in numeric column",
            "new_data/bad/text-in-numbers.csv",
            ("'monthly_charges' is numeric", "'twelve'"),
            _csv(_text_in_numeric(frame)),
        ),
        BadInput(
            "duplicate ids",
            "new_data/bad/duplicate-ids.csv",
            ("repeat an id",),
            _csv(_duplicate_ids(frame)),
        ),
        BadInput(
            "all-null column",
            "new_data/bad/all-null.csv",
            ("'tenure_months' is empty",),
            _csv(null_column),
        ),
        BadInput(
            "unseen categories",
            "new_data/bad/unseen-region.csv",
            ("'region'", "not in the baseline", "'atlantis'"),
            _csv(_unseen_region(frame)),
        ),
        BadInput(
            "non-UTF-8",
            "new_data/bad/latin1.csv",
            ("not UTF-8", "0xe9"),
            lambda p: p.write_bytes(_not_utf8(frame)),
        ),
        BadInput(
            "ragged rows",
            "new_data/bad/ragged.csv",
            ("malformed CSV",),
            lambda p: p.write_text(_ragged(frame)),
        ),
        BadInput(
            "zip instead of CSV",
            "new_data/bad/workbook.csv",
            ("ZIP/Excel",),
            lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 200),
        ),
        BadInput(
            "huge file",
            "new_data/bad/huge.csv",
            ("MiB limit", "QUALITY_MAX_FILE_MB"),
            _huge(frame, limit_mb),
        ),
    ]
