"""Scoring a local file from the command line, with the same streaming core as the service."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from churnops_common.settings import get_settings
from churnops_common.tabular import columns_of, read_chunks
from churnops_scorer.batch import BatchOutputs, Progress, needed_columns, score_stream
from churnops_scorer.models import LoadedModel, champion_version, load_local, load_uri
from churnops_scorer.retention import RetentionList
from churnops_scorer.scoring import BatchInfo, ChunkScorer

PROGRESS_MIN_BYTES = 20 * 1024 * 1024  # smaller files finish before a bar is worth drawing


# A model is refused a file that holds less than this share of its features.
MIN_FEATURE_SHARE = 0.5
_OTHER_DELIMITERS = (";", "\t", "|")


class ContractMismatch(ValueError):
    """The file does not fit the model's data contract (wrong delimiter, other dataset)."""


@dataclass(frozen=True)
class LocalResult:
    rows: int
    model_version: str
    retention_path: Path
    model_name: str = ""
    warnings: tuple[str, ...] = ()
    campaign: dict[str, float | int | None] | None = None


def check_fit(columns: list[str], loaded: LoadedModel) -> None:
    """Refuse a file the model cannot have been meant for, before anything is written."""
    if len(columns) == 1 and any(d in columns[0] for d in _OTHER_DELIMITERS):
        raise ContractMismatch(
            f"the file reads as one column ({columns[0][:80]!r}): wrong delimiter; export it"
            " comma-separated"
        )
    features = loaded.pipeline.input_columns
    missing = [c for c in features if c not in columns]
    if features and len(missing) > len(features) * (1 - MIN_FEATURE_SHARE):
        shown = ", ".join(repr(c) for c in missing[:8])
        raise ContractMismatch(
            f"the file lacks {len(missing)} of the model's {len(features)} features ({shown}):"
            f" it is not data of model {loaded.name!r}"
        )


def resolve_model(model: str | None) -> LoadedModel:
    """--model: a .joblib file, an MLflow URI, or (None) the champion alias, pinned first."""
    if model is not None and model.endswith(".joblib"):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist")
        return load_local(path)  # no MLflow import: it costs seconds
    from mlflow.exceptions import MlflowException

    try:
        return _resolve(model)
    except MlflowException as exc:
        raise ValueError(f"cannot load model {model or 'champion'}: {exc.message}") from exc


def _resolve(model: str | None) -> LoadedModel:
    settings = get_settings()
    if model is None:
        version = champion_version(settings)
        if version is None:
            raise ValueError(
                f"no champion registered for {settings.mlflow_model_name!r} at "
                f"{settings.mlflow_uri()}; train one or pass --model"
            )
        model = f"models:/{settings.mlflow_model_name}/{version}"
    return load_uri(settings, model)


def score_file(file: Path, out: Path, model: str | None, progress: bool) -> LocalResult:
    return score_with(resolve_model(model), file, out, progress)


def score_with(loaded: LoadedModel, file: Path, out: Path, progress: bool) -> LocalResult:
    """Score FILE into OUT with a model already loaded (the benchmark times just this)."""
    settings = get_settings()
    try:
        columns = columns_of(file)
    except Exception as exc:  # a parser's traceback helps nobody on the command line
        raise ValueError(f"{file} is not a readable CSV or Parquet table: {exc}") from exc
    check_fit(columns, loaded)
    # The model's own contract names its id and target; the settings only seed them.
    id_column = loaded.pipeline.id_column or settings.id_column
    target_column = loaded.pipeline.target_column or settings.target_column
    info = BatchInfo(
        loaded.name,
        loaded.version,
        file.resolve().as_uri(),
        "",
        id_column,
        target_column,
        target_column in columns,
        settings.scorer_risk_medium,
        settings.scorer_risk_high,
        settings.scorer_reason_floor,
    )
    scorer = ChunkScorer(loaded.pipeline, info, settings.scorer_reasons)
    retention = RetentionList.from_settings(settings, id_column)
    warning = retention.value_warning(columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="churnops-cli-") as tmp:
        parquet = out if out.suffix == ".parquet" else Path(tmp) / "predictions.parquet"
        outputs = BatchOutputs(
            Path(tmp) / "partial.parquet",
            Path(tmp) / "partial.csv" if out.suffix == ".csv" else None,
        )
        chunks = read_chunks(
            file, settings.scorer_chunk_rows, columns=needed_columns(scorer, retention)
        )
        with _progress_bar(file, progress) as tick:
            result = score_stream(scorer, chunks, outputs, retention, tick)
        # Finished files replace OUT whole: an interrupted run never leaves half a file there.
        shutil.move(
            outputs.csv if outputs.csv is not None else outputs.predictions,
            out if outputs.csv is not None else parquet,
        )
    retention_path = out.with_name(f"{out.stem}-retention.csv")
    retention_path.write_bytes(retention.to_csv_bytes())
    return LocalResult(
        result.rows,
        loaded.version,
        retention_path,
        loaded.name,
        (warning,) if warning else (),
        retention.summary(),
    )


@contextmanager
def _progress_bar(file: Path, enabled: bool) -> Iterator[Progress | None]:
    if not enabled or file.stat().st_size < PROGRESS_MIN_BYTES:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from churnops_common.cli import console

    total = _estimate_rows(file)
    with Progress(
        "scoring",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda rows: bar.update(task, completed=rows)


def _estimate_rows(file: Path) -> int | None:
    """Rows for the bar: Parquet's footer, or a CSV's line count (fast, bytes only)."""
    from churnops_common.tabular import table_format

    if table_format(file) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(file).metadata.num_rows)
    lines = 0
    with file.open("rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return max(lines - 1, 0)
