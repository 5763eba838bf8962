"""One drift verdict everywhere: the quality report, the batch's Evidently page and the monitoring
index of a drifted batch state the same verdict and the same drifted features.

Real quality and monitor handlers on the embedded bus; the batches' scores are written the way
the scorer writes them (no training needed). The pages are parsed as HTML, not searched as text.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa

from churnops_common.db.tables import feature_psi, monitoring_reports, quality_runs
from churnops_common.embedded import EmbeddedPlatform
from churnops_common.events import MonitoringRequested
from churnops_common.synthetic import generate

DRIFTED = "batch-0005-drifted.csv"
CLEAN = "batch-0001.csv"


class Page(HTMLParser):
    """The text of every element with an id or a data-* attribute, and the script bodies."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_key: dict[str, list[str]] = {}
        self.scripts: list[str] = []
        self._open: list[tuple[str, list[str]]] = []  # (tag, keys it is recorded under)
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        keys = [f"#{v}" for k, v in attrs if k == "id" and v]
        keys += [f"[{k}={v}]" if v else f"[{k}]" for k, v in attrs if k.startswith("data-")]
        for key in keys:
            self.by_key.setdefault(key, []).append("")
        self._open.append((tag, keys))
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, keys in self._open:
            for key in keys:
                self.by_key[key][-1] += data
        if self._open and self._open[-1][0] == "script":
            self.scripts[-1] += data

    def text(self, key: str) -> str:
        [value] = self.by_key[key]
        return " ".join(value.split())

    def all(self, key_prefix: str) -> list[str]:
        return [k for k in self.by_key if k.startswith(key_prefix)]


def _land(platform: EmbeddedPlatform, tmp: Path, name: str, frame: Any) -> None:
    path = tmp / name
    frame.drop(columns=["churned"]).to_csv(path, index=False)
    platform.drop(path, "new_data", name=name)
    platform.run()


def _quality_run(platform: EmbeddedPlatform, name: str) -> Any:
    with platform.runtime.engine.connect() as conn:
        run = conn.execute(
            sa.select(quality_runs).where(quality_runs.c.object_key == f"new_data/{name}")
        ).one()
        psi = dict(
            conn.execute(
                sa.select(feature_psi.c.feature, feature_psi.c.psi).where(
                    feature_psi.c.run_id == run.run_id
                )
            ).all()
        )
    return run, psi


def _page(platform: EmbeddedPlatform, uri: str) -> str:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return platform.runtime.store.get_bytes(bucket, key).decode()


def _evidently_drifted_columns(page: Page) -> tuple[int, int, set[str]]:
    """(drifted, compared, drifted column names) as Evidently's own widgets state them."""
    data = "".join(page.scripts)
    counts = re.search(r"Drift is detected for [0-9.]+% of columns \((\d+) out of (\d+)\)", data)
    assert counts, "Evidently's drift table title not found"
    # Each row of Evidently's drift table names its column, then (after the plots' data) says
    # "data_drift": "Detected" or "Not Detected".
    rows = re.split(r'"column_name": ?"', data)[1:]
    verdicts = {row.split('"', 1)[0]: re.search(r'"data_drift": ?"([\w ]+)"', row) for row in rows}
    assert verdicts and all(verdicts.values())
    drifted = {name for name, found in verdicts.items() if found and found[1] == "Detected"}
    return int(counts[1]), int(counts[2]), drifted


def test_the_drifted_batch_has_one_verdict_everywhere(
    tmp_path: Path, make_platform: Callable[..., EmbeddedPlatform], scored_batch: Any
) -> None:
    platform = make_platform()
    platform = EmbeddedPlatform(platform.settings, services={"quality", "monitor"})
    training = tmp_path / "train.csv"
    generate(3000, seed=1).to_csv(training, index=False)
    platform.drop(training, "training")
    platform.run()
    for name, seed, drift in ((CLEAN, 11, 0.0), (DRIFTED, 15, 1.0)):
        frame = generate(2000, seed=seed, drift=drift)
        _land(platform, tmp_path, name, frame)
        scored_batch(
            platform, tmp_path, name=name.removesuffix(".csv"), rows=0, seed=seed, inputs=frame
        )
    platform.publish(MonitoringRequested.start_chain("one-verdict"))
    platform.run()

    run, psi = _quality_run(platform, DRIFTED)
    threshold = platform.settings.psi_threshold
    drifted = {f for f, v in psi.items() if v >= threshold}
    assert run.psi_breached and 0 < len(drifted) < len(psi)
    verdict = f"accepted, drift in {len(drifted)} of {len(psi)} features: retrain requested"

    # The quality report: the headline in words and the drifted features.
    assert run.report_uri.startswith("s3://reports/quality/batch-0005-drifted/")
    report = Page(_page(platform, run.report_uri))
    assert report.text("#headline") == verdict
    assert {k.split("=", 1)[1].rstrip("]") for k in report.all("[data-feature=")} == drifted

    # Evidently's page beside it: our banner, and Evidently's own count and drifted columns.
    evidently_uri = run.report_uri.replace("report.html", "evidently-drift.html")
    evidently = Page(_page(platform, evidently_uri))
    assert evidently.text("#churnops-verdict").endswith(verdict)
    count, compared, columns = _evidently_drifted_columns(evidently)
    assert (count, compared) == (len(drifted), len(psi))
    assert columns == drifted
    assert "Dataset Drift is detected" in "".join(evidently.scripts)

    # The monitoring index: the batch's row, named after its file, states the same.
    with platform.runtime.engine.connect() as conn:
        uris = conn.execute(sa.select(monitoring_reports.c.report_uris)).scalar_one()
    index_uri = next(u for u in uris if u.endswith("/index.html"))
    index_html = _page(platform, index_uri)
    index = Page(index_html)
    # It links each batch's Evidently page, relative to its own folder.
    folder = PurePosixPath(index_uri.removeprefix("s3://reports/")).parent
    links = re.findall(r'href="([^"]+/evidently-drift\.html)"', index_html)
    assert len(links) == 2
    for link in links:
        key = os.path.normpath(str(folder / link))
        assert platform.runtime.store.exists("reports", key), key
    assert index.text("#headline") == f"drift in 1 of 2 checked batch(es): {DRIFTED}"
    rows = index.all("[data-batch=")
    assert sorted(rows) == sorted([f"[data-batch={CLEAN}]", f"[data-batch={DRIFTED}]"])
    verdicts = index.by_key["[data-verdict]"]
    listed = index.by_key["[data-drifted]"]
    # Newest first: the drifted batch's row is the first.
    assert " ".join(verdicts[0].split()) == verdict
    assert {re.sub(r" \(.*", "", f).strip() for f in listed[0].split(",")} == drifted
    assert " ".join(verdicts[1].split()) == "accepted, no drift"
    summary = json.loads(_page(platform, next(u for u in uris if u.endswith("summary.json"))))
    assert summary["metrics"]["batches.drifted"] == 1
