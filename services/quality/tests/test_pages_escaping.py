"""User text (file, column and category names) in a batch's quality report and Evidently page
is shown, never run: neither page carries it as markup."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from churnops_common.db.tables import quality_runs
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.settings import Settings
from churnops_common.synthetic import generate

PAYLOAD = "</script><img src=x onerror=alert(1)>"


def _with_payload(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    frame = frame.copy()
    hostile = (pd.RangeIndex(len(frame)) % 100) < share * 100
    frame["plan"] = ["basic" if not h else PAYLOAD for h in hostile]
    return frame.rename(columns={"region": PAYLOAD})


def test_hostile_names_never_appear_as_markup(tmp_path: Path) -> None:
    settings = Settings(churnops_mode="embedded", churnops_home=tmp_path / "home", _env_file=None)
    platform = EmbeddedPlatform(settings, services={"quality"})
    training, batch = tmp_path / "train.csv", tmp_path / "batch.csv"
    _with_payload(generate(1500, seed=1), 0.1).to_csv(training, index=False)
    _with_payload(generate(800, seed=15, drift=1.0), 0.6).drop(columns=["churned"]).to_csv(
        batch, index=False
    )
    platform.drop(training, "training")
    platform.drop(batch, "new_data", name="<b onmouseover=alert(1)>batch.csv")
    platform.run()

    with platform.runtime.engine.connect() as conn:
        uri = conn.execute(
            sa.select(quality_runs.c.report_uri).where(quality_runs.c.kind == "new_data")
        ).scalar_one()
    folder = uri.removeprefix("s3://reports/").rsplit("/", 1)[0]
    assert folder.startswith("quality/b-onmouseover-alert-1-batch/")  # named, not injected
    store = platform.runtime.store
    report = store.get_bytes("reports", f"{folder}/report.html").decode()
    page = store.get_bytes("reports", f"{folder}/evidently-drift.html").decode()
    for html in (report, page):
        assert "alert(1)" in html  # shown...
        assert PAYLOAD not in html and "<b onmouseover" not in html  # ...never as markup
    assert "drift in" in report and "drift in" in page
