"""The platform over time, on the stack the scenarios of test_system.py left behind.

A real Prometheus server (Debian's `prometheus`) scrapes the local workers and the bridge with
compose's scrape job (DNS discovery swapped for the local ports) and compose's alert rules; its
HTTP API must report the counts the monitoring tables hold for the events the tests sent.
Every PromQL metric in the dashboards and rules must be one the processes expose, every
dashboard's SQL must return rows of the expected columns on the lifecycle's data, and the
monitoring report must plot the same queries (there is no Grafana here to screenshot).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from churnops_common.events import MonitoringRequested
from churnops_common.routing import SERVICE_QUEUES
from tests.system.figures import FIGURES
from tests.system.harness import LocalStack, free_port
from tests.system.observability import (
    PROMETHEUS_DIR,
    alert_rules,
    exposed_names,
    metric_names,
    panel_sql,
    promql,
)

pytestmark = [pytest.mark.system, pytest.mark.services, pytest.mark.timeout(600)]

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack) -> Iterator[str]:
    """Prometheus on a free port, scraping every second; yields its base URL."""
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (apt-get install prometheus; .ci/run does)")
    folder = stack.workdir / "prometheus"
    folder.mkdir(exist_ok=True)
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
    [job] = config["scrape_configs"]
    del job["dns_sd_configs"], job["relabel_configs"]  # compose's DNS, here local ports
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name.rstrip("0123456789")}}
        for name, port in stack.metrics_ports.items()
    ]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        PROMETHEUS,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = stack.spawn("prometheus", argv)
    url = f"http://127.0.0.1:{port}"
    try:
        stack.wait_until(lambda: _ready(url), 60, "Prometheus to be ready")
        yield url
    finally:
        stack.expected_down.add("prometheus")
        proc.popen.terminate()
        proc.popen.wait(30)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _api(url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}/api/v1/{path}{query}", timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def _vector(url: str, expr: str, label: str | None = None) -> dict[str, float]:
    """An instant query's samples, keyed by one label's value ('' when there is none)."""
    result = _api(url, "query", query=expr)["result"]
    return {(s["metric"].get(label, "") if label else ""): float(s["value"][1]) for s in result}


def _counts(stack: LocalStack, sql: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in stack.rows(sql)}


def _eventually_equal(
    stack: LocalStack, what: str, observed: Any, expected: Any, timeout: float = 30
) -> None:
    """Scrapes come every second: compare until they agree, then assert (showing both)."""
    deadline = time.monotonic() + timeout
    while True:
        seen, want = observed(), expected()
        if seen == want or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert seen == want, f"{what}: Prometheus {seen} != monitoring tables {want}"


def test_prometheus_counts_what_the_ledger_holds(stack: LocalStack, prometheus: str) -> None:
    stack.wait_idle()
    stack.wait_until(
        lambda: (
            _vector(prometheus, 'count(up{job="churnops"} == 1)').get("", 0)
            == len(stack.metrics_ports)
        ),
        60,
        "Prometheus to scrape every worker and the bridge",
    )
    handled = 'sum by (task) (churnops_events_handled_total{outcome="done"})'
    _eventually_equal(
        stack,
        "events handled per task",
        lambda: {k: v for k, v in _vector(prometheus, handled, "task").items() if v},
        lambda: _counts(
            stack,
            "SELECT task_name, count(*) FROM monitoring.processed_events WHERE status = 'done'"
            " GROUP BY task_name",
        ),
    )
    dead = "sum by (task) (churnops_events_dead_lettered_total)"
    _eventually_equal(
        stack,
        "dead letters per task",
        lambda: {k: v for k, v in _vector(prometheus, dead, "task").items() if v},
        lambda: _counts(
            stack, "SELECT task_name, count(*) FROM monitoring.dead_letters GROUP BY task_name"
        ),
    )
    _eventually_equal(
        stack,
        "rows scored",
        lambda: _vector(prometheus, "sum(churnops_rows_scored_total)"),
        lambda: {
            "": float(stack.count("SELECT coalesce(sum(rows), 0) FROM monitoring.scoring_runs"))
        },
    )
    # One observation per batch scored in a chain that a landed file started (not rescores).
    _eventually_equal(
        stack,
        "landing-to-predictions observations",
        lambda: _vector(prometheus, "sum(churnops_landing_to_predictions_seconds_count)"),
        lambda: {
            "": float(
                stack.count(
                    "SELECT count(*) FROM monitoring.scoring_runs s WHERE EXISTS (SELECT 1 FROM"
                    " monitoring.processed_events p WHERE p.correlation_id = s.correlation_id"
                    " AND p.event_type = 'DataLanded')"
                )
            )
        },
    )
    _eventually_equal(
        stack,
        "notifications through the bridge",
        lambda: _vector(prometheus, "sum(churnops_bridge_elements_total)"),
        lambda: {"": float(stack.notified)},
    )
    skipped = _vector(
        prometheus,
        'sum(churnops_events_handled_total{task="churnops.quality.on_data_landed",'
        'outcome="skipped"})',
    )
    assert skipped[""] >= 1  # the burst's duplicate notification
    depth = _vector(prometheus, "max by (queue) (churnops_queue_depth)", "queue")
    assert depth == dict.fromkeys(SERVICE_QUEUES, 0)
    champion = _vector(prometheus, "max(churnops_champion_version)")[""]
    [latest] = stack.rows(
        "SELECT challenger_version FROM monitoring.model_promotions WHERE decision = 'promoted'"
        " ORDER BY decided_at DESC LIMIT 1"
    )
    assert champion == float(latest[0])
    psi = _vector(prometheus, "max by (feature) (churnops_feature_psi)", "feature")
    assert psi and all(v >= 0 for v in psi.values())
    # Prometheus loaded compose's rules and evaluates them without error.
    groups = _api(prometheus, "rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(alert_rules()) and all(r["health"] == "ok" for r in rules), rules
    firing = sorted({a["labels"]["alertname"] for a in _api(prometheus, "alerts")["alerts"]})
    handled_total = sum(_vector(prometheus, handled, "task").values())
    p50 = _vector(
        prometheus,
        "histogram_quantile(0.5, sum by (le) (churnops_landing_to_predictions_seconds_bucket))",
    )
    FIGURES["prometheus"] = (
        f"{len(stack.metrics_ports)} targets; {handled_total:.0f} events handled = ledger; "
        f"landing->predictions p50 bucket {p50.get('', float('nan')):.2f}s; "
        f"alerts pending/firing: {firing or 'none'}"
    )


def test_every_metric_in_dashboards_and_rules_is_exposed(
    stack: LocalStack, prometheus: str
) -> None:
    pages = {}
    for name, port in stack.metrics_ports.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            pages[name] = response.read().decode()
    exposed = set().union(*(exposed_names(page) for page in pages.values()))
    # What Prometheus itself holds after scraping them (series with samples).
    stored = set(_api(prometheus, "label/__name__/values"))
    missing = {
        (where, name)
        for where, expr in promql()
        for name in metric_names(expr)
        if name not in exposed
    }
    assert sorted(missing) == []
    named = {name for _, expr in promql() for name in metric_names(expr)}
    assert named <= stored, sorted(named - stored)
    # Bounded labels: no series is keyed by a file, an event or a customer.
    labels = set(_api(prometheus, "labels"))
    assert labels <= {
        "__name__",
        "job",
        "instance",
        "service",
        "task",
        "outcome",
        "queue",
        "feature",
        "le",
        "alertname",
        "alertstate",
        "severity",
    }, labels


def test_every_dashboard_query_returns_rows_on_the_lifecycle_data(stack: LocalStack) -> None:
    queries = panel_sql()
    assert len(queries) >= 12
    with stack.engine.connect() as conn:
        # As Grafana runs them: the read-only role of sql/009.
        conn.execute(sa.text("SET ROLE churnops_grafana"))
        for board, sql, fmt in queries:
            result = conn.execute(sa.text(sql))
            columns, rows = list(result.keys()), result.all()
            assert rows, (board, sql)
            if fmt == "time_series":
                assert columns[0] == "time", (board, sql)
                values = [c for c in columns[1:] if c != "metric"]
                assert values, (board, sql)
                for row in rows:
                    assert row[0] is not None
                    for column in values:
                        value = row._mapping[column]
                        assert value is None or isinstance(value, int | float), (sql, column)
            elif "text" in columns:  # an annotation: when, and what to write there
                assert columns[0] == "time", (board, sql)


def test_the_monitoring_report_plots_the_dashboards_queries(stack: LocalStack) -> None:
    stack.wait_idle()
    request = MonitoringRequested.start_chain(f"system-test-monitoring-{uuid.uuid4()}")
    stack.publish(request)
    stack.wait_until(
        lambda: (
            stack.count(
                "SELECT count(*) FROM monitoring.monitoring_reports WHERE report_id = :r",
                r=request.event_id,
            )
            == 1
        ),
        300,
        "the monitoring report",
    )
    [row] = stack.rows(
        "SELECT status, report_uris FROM monitoring.monitoring_reports WHERE report_id = :r",
        r=request.event_id,
    )
    assert row.status == "done", row
    reports = stack.settings.minio_reports_bucket
    uris = {u.rsplit("/", 1)[1]: u.removeprefix(f"s3://{reports}/") for u in row.report_uris}
    trends = stack.store.get_bytes(reports, uris["trends.html"]).decode()
    from churnops_monitor.trends import TRENDS

    plotted = trends.count("data:image/png;base64,")
    assert plotted == len(TRENDS), f"{plotted} of {len(TRENDS)} trends have data"
    index = stack.store.get_bytes(reports, uris["index.html"]).decode()
    assert "trends.html" in index and "/report.html" in index  # the batches' quality reports
    target = os.environ.get("CHURNOPS_FIGURES")
    if target:  # beside the figures: the over-time plots, for people (no Grafana here)
        copy = Path(target).with_name("trends.html")
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(trends, encoding="utf-8")
        FIGURES["over-time plots"] = str(copy)
    FIGURES["monitoring report"] = f"{plotted} over-time plots from the dashboards' queries"
