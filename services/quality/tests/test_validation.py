"""Every bad input the quality README lists, each rejected (or warned about) with its reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_quality import reading
from churnops_quality.baseline import Baseline
from churnops_quality.checks import CheckResult, check_file

Writer = Callable[[str, pd.DataFrame], Path]


def _batch(rows: int = 200, seed: int = 5) -> pd.DataFrame:
    return generate(rows, seed=seed).drop(columns=["churned"])


def _check(
    path: Path, baseline: Baseline | None, settings: Settings, kind: str = "new_data"
) -> CheckResult:
    return check_file(path, kind, baseline, settings)  # type: ignore[arg-type]


def _codes(result: CheckResult, severity: str = "error") -> list[str]:
    return [i.code for i in result.verdict.issues if i.severity == severity]


def test_a_clean_batch_is_accepted_with_psi(
    write_csv: Writer, baseline: Baseline, settings: Settings
) -> None:
    result = _check(write_csv("ok.csv", _batch()), baseline, settings)
    assert result.verdict.status == "accepted", result.verdict.reason
    assert result.verdict.rows == 200
    assert not result.verdict.has_target
    assert result.psi is not None and "customer_id" not in result.psi.by_feature
    assert set(result.psi.by_feature) == {s.name for s in baseline.schema.features}


def test_empty_file(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    result = _check(path, baseline, settings)
    assert _codes(result) == ["empty_file"]
    assert "empty file (0 bytes)" in result.verdict.reason


def test_blank_file(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\n  \n")
    assert _codes(_check(path, baseline, settings)) == ["empty_file"]


def test_header_only(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "header.csv"
    path.write_text("customer_id,region,age\n")
    result = _check(path, baseline, settings)
    assert _codes(result) == ["header_only"]
    assert "header only: 3 columns and no data rows" in result.verdict.reason


def test_parquet_header_only(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "none.parquet"
    _batch().iloc[:0].to_parquet(path)
    assert _codes(_check(path, baseline, settings)) == ["header_only"]


def test_demo_malformed_file_semicolons_and_no_id(
    tmp_path: Path, baseline: Baseline, settings: Settings
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("region;age;tenure_months\nnorth;41;12\nsouth;35;3\n", encoding="utf-8")
    result = _check(path, baseline, settings)
    assert _codes(result) == ["wrong_delimiter"]
    assert "';'-delimited" in result.verdict.reason
    assert "no 'customer_id' id column" in result.verdict.reason


def test_tab_delimited(
    write_csv: Writer, tmp_path: Path, baseline: Baseline, settings: Settings
) -> None:
    path = tmp_path / "tabs.csv"
    _batch().to_csv(path, sep="\t", index=False)
    result = _check(path, baseline, settings)
    assert "looks tab-delimited" in result.verdict.reason


def test_missing_id_column(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    result = _check(
        write_csv("noid.csv", _batch().drop(columns=["customer_id"])), baseline, settings
    )
    assert "missing_id" in _codes(result)
    assert "no 'customer_id' id column" in result.verdict.reason


def test_missing_feature_columns(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch().drop(columns=["age", "region"])
    result = _check(write_csv("nofeat.csv", frame), baseline, settings)
    assert _codes(result) == ["missing_columns"]
    assert "'region', 'age'" in result.verdict.reason


def test_labels_need_the_target(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    labels = pd.DataFrame({"customer_id": ["a", "b"], "outcome_date": ["2026-01-01"] * 2})
    result = _check(write_csv("labels.csv", labels), baseline, settings, "labels")
    assert _codes(result) == ["missing_target"]
    assert "'churned' target column" in result.verdict.reason


def test_good_labels_file(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    labels = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "churned": [1, 0, 1], "label_date": ["2026-01-01"] * 3}
    )
    result = _check(write_csv("labels.csv", labels), baseline, settings, "labels")
    assert result.verdict.status == "accepted" and result.verdict.has_target
    assert result.psi is None and result.verdict.warnings == ()


def test_target_with_other_values(
    write_csv: Writer, baseline: Baseline, settings: Settings
) -> None:
    labels = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "churned": [1, 0, 2, 7]})
    result = _check(write_csv("labels.csv", labels), baseline, settings, "labels")
    assert _codes(result) == ["bad_target"]
    assert (
        "column 'churned': 2 rows hold values outside the target vocabulary (e.g. '2', '7')"
        in result.verdict.reason
    )


def test_labels_spelled_like_the_training_set_are_accepted(
    write_csv: Writer, baseline: Baseline, settings: Settings
) -> None:
    """The one target vocabulary: Yes/No labels for a model trained on 0/1, and the reverse."""
    labels = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "churned": ["Yes", "No", " churned ", "stayed"]}
    )
    result = _check(write_csv("labels.csv", labels), baseline, settings, "labels")
    assert result.verdict.status == "accepted" and result.verdict.has_target


def test_text_in_a_numeric_column(
    write_csv: Writer, baseline: Baseline, settings: Settings
) -> None:
    frame = _batch()
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "forty"
    frame.loc[7, "age"] = "n/a?"
    result = _check(write_csv("text.csv", frame), baseline, settings)
    assert _codes(result) == ["text_in_numeric"]
    assert (
        "column 'age' is numeric but 2 of 200 rows hold text (e.g. 'forty' (row 3), 'n/a?' (row 8))"
    ) in result.verdict.reason


def test_text_in_numeric_tolerated_below_the_configured_share(
    write_csv: Writer, baseline: Baseline, settings: Settings
) -> None:
    frame = _batch()
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "forty"
    lenient = settings.model_copy(update={"quality_max_bad_value_share": 0.01})
    result = _check(write_csv("text.csv", frame), baseline, lenient)
    assert result.verdict.status == "accepted"
    assert _codes(result, "warning") == ["text_in_numeric"]


def test_unseen_categories_warn(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch()
    frame.loc[:29, "region"] = "mars"
    frame.loc[30:36, "region"] = "venus"
    result = _check(write_csv("unseen.csv", frame), baseline, settings)
    assert result.verdict.status == "accepted"
    [warning] = result.verdict.warnings
    assert warning == (
        "column 'region': 37 rows hold 2 categories not in the baseline"
        " (e.g. 'mars' x30, 'venus' x7)"
    )
    strict = settings.model_copy(update={"quality_reject_unseen_categories": True})
    assert _codes(_check(write_csv("unseen.csv", frame), baseline, strict)) == ["unseen_categories"]


def test_duplicate_ids(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch()
    frame.loc[10, "customer_id"] = frame.loc[0, "customer_id"]
    frame.loc[11, "customer_id"] = frame.loc[1, "customer_id"]
    result = _check(write_csv("dups.csv", frame), baseline, settings)
    assert _codes(result) == ["duplicate_ids"]
    assert (
        "column 'customer_id': 2 rows repeat an id seen earlier in the file"
        " (e.g. 'C0005-0000000', 'C0005-0000001')"
    ) in result.verdict.reason
    allowed = settings.model_copy(update={"quality_allow_duplicate_ids": True})
    assert _check(write_csv("dups.csv", frame), baseline, allowed).verdict.status == "accepted"


def test_duplicate_ids_across_chunks(
    write_csv: Writer, baseline: Baseline, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "CHUNK_ROWS", 30)
    frame = _batch()
    frame.loc[150, "customer_id"] = frame.loc[3, "customer_id"]
    result = _check(write_csv("dups.csv", frame), baseline, settings)
    assert _codes(result) == ["duplicate_ids"]
    assert "1 rows repeat an id" in result.verdict.reason


def test_ids_repeated_with_spaces_around_them(
    write_csv: Writer, baseline: Baseline, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "CHUNK_ROWS", 30)
    frame = _batch()
    first = frame.loc[3, "customer_id"]
    frame.loc[40, "customer_id"] = f"  {first} "
    frame.loc[41, "customer_id"] = f" {first}"
    result = _check(write_csv("dups.csv", frame), baseline, settings)
    assert _codes(result) == ["duplicate_ids"]
    assert "2 rows repeat an id" in result.verdict.reason


def test_missing_ids(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch()
    frame.loc[[4, 9], "customer_id"] = None
    result = _check(write_csv("noids.csv", frame), baseline, settings)
    assert _codes(result) == ["missing_ids"]
    assert "2 of 200 rows have no id (row 5, row 10)" in result.verdict.reason


def test_all_null_column(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch()
    frame["region"] = None
    result = _check(write_csv("nulls.csv", frame), baseline, settings)
    assert _codes(result) == ["all_null"]
    assert "column 'region' is empty: all 200 rows are missing" in result.verdict.reason


def test_null_rate_jump_warns(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch()
    frame.loc[:99, "age"] = None
    result = _check(write_csv("holes.csv", frame), baseline, settings)
    assert result.verdict.status == "accepted"
    assert "column 'age': 50% missing, baseline 0%" in result.verdict.warnings


def test_not_utf8(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_id,region\nC1,north\nC2,Bogotá\n".encode("latin-1"))
    result = _check(path, baseline, settings)
    assert _codes(result) == ["not_utf8"]
    assert result.verdict.reason.startswith("not UTF-8: byte 0xe1 at offset 36 (line 3)")


def test_huge_file(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    small_limit = settings.model_copy(update={"quality_max_file_mb": 0.001})
    result = _check(write_csv("big.csv", _batch()), baseline, small_limit)
    assert _codes(result) == ["file_too_large"]
    assert "MiB limit (QUALITY_MAX_FILE_MB)" in result.verdict.reason


def test_ragged_csv(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("customer_id,region\nC1,north\nC2,south,extra,fields\n")
    result = _check(path, baseline, settings)
    assert _codes(result) == ["malformed_csv"]
    assert "Expected 2 columns, got 4" in result.verdict.reason


def test_excel_file(tmp_path: Path, baseline: Baseline, settings: Settings) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert _codes(_check(path, baseline, settings)) == ["not_a_table"]


def test_extra_columns_warn(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    frame = _batch().assign(campaign="spring")
    result = _check(write_csv("extra.csv", frame), baseline, settings)
    assert result.verdict.status == "accepted"
    assert result.verdict.warnings == ("extra columns not in the baseline schema: 'campaign'",)


def test_first_training_set_builds_a_baseline(write_csv: Writer, settings: Settings) -> None:
    result = _check(write_csv("train.csv", generate(300, seed=3)), None, settings, "training")
    assert result.verdict.status == "accepted"
    assert result.new_baseline is not None
    new, sample = result.new_baseline
    assert new.schema.id_column == "customer_id" and new.schema.target_column == "churned"
    assert len(sample) == pytest.approx(300 * settings.baseline_share, abs=2)
    # Stratified: the sample keeps the churn rate.
    assert sample["churned"].mean() == pytest.approx(
        generate(300, seed=3)["churned"].mean(), abs=0.02
    )


def test_first_training_set_with_text_in_numbers_is_rejected(
    write_csv: Writer, settings: Settings
) -> None:
    frame = generate(300, seed=3)
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "unknown"
    result = _check(write_csv("train.csv", frame), None, settings, "training")
    assert _codes(result) == ["text_in_numeric"]
    assert "'unknown' (row 6)" in result.verdict.reason
    assert result.new_baseline is None


def test_new_data_before_any_baseline(write_csv: Writer, settings: Settings) -> None:
    result = _check(write_csv("early.csv", _batch()), None, settings)
    assert result.verdict.status == "accepted" and result.psi is None
    assert any("no baseline yet" in w for w in result.verdict.warnings)


def test_parquet_and_csv_give_the_same_verdict_and_psi(
    write_csv: Writer, tmp_path: Path, baseline: Baseline, settings: Settings
) -> None:
    frame = generate(300, seed=9, drift=0.5)
    parquet = tmp_path / "batch.parquet"
    frame.to_parquet(parquet, index=False)
    from_csv = _check(write_csv("batch.csv", frame), baseline, settings)
    from_parquet = _check(parquet, baseline, settings)
    assert from_csv.verdict == from_parquet.verdict
    assert from_csv.verdict.has_target
    assert from_csv.psi is not None and from_parquet.psi is not None
    assert from_parquet.psi.by_feature == pytest.approx(from_csv.psi.by_feature)


def test_labels_without_outcomes(write_csv: Writer, baseline: Baseline, settings: Settings) -> None:
    labels = pd.DataFrame({"customer_id": ["a", "b", "c"], "churned": [1, None, None]})
    result = _check(write_csv("labels.csv", labels), baseline, settings, "labels")
    assert _codes(result) == ["missing_target_values"]
    assert "column 'churned': 2 of 3 rows have no outcome" in result.verdict.reason
