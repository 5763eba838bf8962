"""deploy/k8s/airflow/values.yaml: the official Airflow chart runs our image, DAGs and settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from churnops_common.settings import Settings
from tests.k8s.manifests import (
    CONFIG_OUTSIDE_SETTINGS,
    K8S,
    REDIS_URL,
    REPO,
    SECRET_EXAMPLES,
    VERSION,
    read_env_file,
)

VALUES = K8S / "airflow" / "values.yaml"
DOCKERFILE = REPO / "airflow" / "Dockerfile"
# The chart's Secret value -> the key it reads in that Secret.
CHART_SECRET_KEYS = {
    ("data", "metadataSecretName"): "connection",
    ("fernetKeySecretName",): "fernet-key",
    ("jwtSecretName",): "jwt-secret",
    ("apiSecretKeySecretName",): "api-secret-key",
}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _compose_airflow(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]["airflow-scheduler"]  # type: ignore[no-any-return]


def test_the_chart_runs_the_image_compose_builds(
    values: dict[str, Any], compose: dict[str, Any]
) -> None:
    repository = _compose_airflow(compose)["image"].partition(":")[0]
    assert values["images"]["airflow"] == {"repository": repository, "tag": VERSION}
    assert (values["defaultAirflowRepository"], values["defaultAirflowTag"]) == (
        repository,
        VERSION,
    )
    assert values["images"]["useDefaultImageForMigration"] is False
    base = re.search(r"^FROM apache/airflow:([\d.]+)-", DOCKERFILE.read_text(), re.MULTILINE)
    assert base is not None
    assert values["airflowVersion"] == base.group(1)


def test_the_dags_come_with_the_image(values: dict[str, Any]) -> None:
    assert values["dags"]["persistence"]["enabled"] is False
    assert values["dags"]["gitSync"]["enabled"] is False
    assert "COPY --chown=airflow:0 airflow/dags /opt/airflow/dags" in DOCKERFILE.read_text()


def test_airflow_runs_as_in_compose(values: dict[str, Any], compose: dict[str, Any]) -> None:
    env = _compose_airflow(compose)["environment"]
    assert values["executor"] == env["AIRFLOW__CORE__EXECUTOR"]
    assert values["config"]["core"]["auth_manager"] == env["AIRFLOW__CORE__AUTH_MANAGER"]
    # The platform's Postgres and Redis, not the chart's own.
    assert values["postgresql"]["enabled"] is False
    assert values["redis"]["enabled"] is False


def test_the_dags_see_the_platforms_settings(values: dict[str, Any]) -> None:
    config = read_env_file(K8S / "base" / "config.env")
    env = {item["name"]: item["value"] for item in values["env"]}
    fields = {name.upper() for name in Settings.model_fields}
    for name, value in env.items():
        assert name in fields | CONFIG_OUTSIDE_SETTINGS, name
        assert value == config[name], f"{name} differs from base/config.env"
    # Kubernetes expands $(VAR) only from variables defined before: env, then secret, then this.
    [redis_url] = yaml.safe_load(values["extraEnv"])
    assert redis_url == {"name": "REDIS_URL", "value": REDIS_URL}
    defined = set(env) | {item["envName"] for item in values["secret"]}
    assert set(re.findall(r"\$\((\w+)\)", REDIS_URL)) <= defined


def test_every_secret_the_chart_reads_is_in_an_example(values: dict[str, Any]) -> None:
    for item in values["secret"]:
        example = read_env_file(SECRET_EXAMPLES[item["secretName"]])
        assert item["secretKey"] in example, item
    for path, key in CHART_SECRET_KEYS.items():
        node: Any = values
        for part in path:
            node = node[part]
        assert key in read_env_file(SECRET_EXAMPLES[node]), (path, key)
