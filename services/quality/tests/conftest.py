"""Fixtures of the quality service's tests: settings, a small baseline, file writers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churnops_common.settings import Settings
from churnops_common.synthetic import generate
from churnops_quality.baseline import Baseline, build_baseline


@pytest.fixture
def settings(embedded_settings: Settings) -> Settings:
    """Embedded settings without MLflow and PDF (one test each turns them on): fast."""
    return embedded_settings.model_copy(
        update={"quality_mlflow_enabled": False, "quality_pdf_enabled": False}
    )


@pytest.fixture
def reference() -> pd.DataFrame:
    return generate(600, seed=1)


@pytest.fixture
def baseline(reference: pd.DataFrame, settings: Settings) -> Baseline:
    return build_baseline(reference, settings, "test://reference", version=1)[0]


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str, pd.DataFrame], Path]:
    def write(name: str, frame: pd.DataFrame) -> Path:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return write
