"""The Prometheus and Grafana files of the stack, read for tests: queries, metric names, SQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "docker" / "prometheus"
GRAFANA_DIR = ROOT / "docker" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
# A metric of ours in a PromQL expression (label names and functions never start like this).
_OUR_METRIC = re.compile(r"\b(churnops_[a-z0-9_]+)\b")


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def _walk(node: Any, key: str) -> Iterator[tuple[dict[str, Any], Any]]:
    """Every (object, value) where an object in the JSON has `key`."""
    if isinstance(node, dict):
        if key in node:
            yield node, node[key]
        for value in node.values():
            yield from _walk(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def panel_sql() -> list[tuple[str, str, str]]:
    """(dashboard, SQL, format) of every Postgres query: panels and annotations."""
    return [
        (name, str(sql), str(target.get("format", "time_series")))
        for name, board in dashboards().items()
        for target, sql in _walk(board, "rawSql")
    ]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def promql() -> list[tuple[str, str]]:
    """(where, expression) of every PromQL query: dashboard panels and alert rules."""
    found = [
        (f"dashboard {name}", str(expr))
        for name, b in dashboards().items()
        for _, expr in _walk(b, "expr")
    ]
    found += [(f"alert {r['alert']}", str(r["expr"])) for r in alert_rules()]
    return found


def metric_names(expression: str) -> set[str]:
    return set(_OUR_METRIC.findall(expression))


def exposed_names(exposition: str) -> set[str]:
    """Every series name a /metrics page can give Prometheus (declared families included)."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        else:
            names.add(family.name)
    return names
