"""Prometheus and Grafana as compose runs them: rules that promtool accepts, every worker
scraped, data sources and dashboards that agree with each other and with the report's plots."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from churnops_monitor.trends import TRENDS
from tests.system.observability import (
    GRAFANA_DIR,
    PROMETHEUS_DIR,
    dashboards,
    panel_sql,
    promql,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus; .ci/run does)"
)


def _promtool(*args: str) -> str:
    result = subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_alert_rules_pass_promtool() -> None:
    from tests.system.observability import alert_rules

    out = _promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


@needs_promtool
def test_prometheus_config_passes_promtool() -> None:
    _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))


def test_alerts_cover_what_should_wake_someone() -> None:
    from tests.system.observability import alert_rules

    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "ChurnOpsDeadLetter",
        "ChurnOpsQueueGrowing",
        "ChurnOpsNoBatchScored",
        "ChurnOpsRealizedDegradation",
        "ChurnOpsEstimatedDegradation",
        "ChurnOpsPerformanceDegraded",
    } <= names
    growing = next(r for r in alert_rules() if r["alert"] == "ChurnOpsQueueGrowing")
    assert growing["for"] == "15m"


def test_prometheus_finds_every_worker_replica_and_the_bridge(stack: Any) -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    [dns] = job["dns_sd_configs"]  # by DNS: compose answers with every replica
    assert dns["type"] == "A"
    assert sorted(dns["names"]) == sorted([*stack.workers(), "bridge"])
    assert str(dns["port"]) == stack.environment("bridge")["METRICS_PORT"]
    assert stack.environment("bridge")["METRICS_BIND"] == "0.0.0.0"
    assert "./docker/prometheus:/etc/prometheus:ro" in stack.services["prometheus"]["volumes"]


def test_grafana_provisions_its_sources_and_dashboards(stack: Any) -> None:
    sources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "churnops.yml").read_text()
    )["datasources"]
    uids = {s["uid"]: s for s in sources}
    postgres = uids["churnops-postgres"]
    assert postgres["user"] == "churnops_grafana"  # the read-only role of sql/009
    assert postgres["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"
    grafana = stack.environment("grafana")
    assert grafana["POSTGRES_DB"] == stack.environment("postgres")["POSTGRES_DB"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"]  # required from .env (see the secret tests)
    used = {
        target["datasource"]["uid"]
        for board in dashboards().values()
        for panel in board["panels"]
        for target in panel["targets"]
    }
    assert used == set(uids)
    assert set(dashboards()) == {
        "churnops-pipeline",
        "churnops-drift",
        "churnops-model",
        "churnops-segments",
        "churnops-retention",
    }
    mounts = stack.services["grafana"]["volumes"]
    assert "./docker/grafana/dashboards:/etc/grafana/dashboards:ro" in mounts


def test_promotions_are_marked_on_the_model_dashboard() -> None:
    annotations = dashboards()["churnops-model"]["annotations"]["list"]
    [promotions] = [a for a in annotations if a.get("name") == "Promotions"]
    assert "model_promotions" in promotions["target"]["rawSql"]


def test_the_report_plots_the_dashboards_own_queries() -> None:
    queries = {sql for _, sql, _ in panel_sql()}
    assert sorted(name for name, trend in TRENDS.items() if trend.sql not in queries) == []


def test_queries_name_no_unbounded_label() -> None:
    # No file names or ids as legends or groupings: they would grow without bound.
    for where, expr in promql():
        for word in ("object_key", "event_id", "correlation_id", "customer"):
            assert word not in expr, (where, expr)
