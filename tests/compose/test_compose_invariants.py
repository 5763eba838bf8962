"""The rules of the stack that the schema cannot see: health, start order, secrets, exposure."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from typing import Any

import pytest

CONDITIONS = {"service_healthy", "service_completed_successfully"}
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|FERNET|ACCESS_KEY|TOKEN|CREDENTIAL|MINIO_(ROOT|SERVICE|UPLOAD)_USER|REDISCLI_AUTH"
)
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")
PLACEHOLDERS = re.compile(r"\b(minioadmin|changeme|change-me|password123|admin:admin)\b", re.I)
# The original stack's host ports, all on the loopback interface.
EXPECTED_PORTS = {
    "mlflow": {5001},
    "minio": {9000, 9001},
    "airflow-apiserver": {18080},
    "flower": {5555},
    "prometheus": {9090},
    "grafana": {3000},
}


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _depends_on(service: dict[str, Any]) -> dict[str, Any]:
    deps = service.get("depends_on", {})
    assert isinstance(deps, dict), "depends_on must use the long form with a condition"
    return deps


def test_every_long_running_service_has_a_healthcheck(stack: Any) -> None:
    missing = [
        name
        for name, service in stack.services.items()
        if not _one_shot(service)
        and (
            not service.get("healthcheck", {}).get("test")
            or service["healthcheck"].get("disable")
            or service["healthcheck"]["test"][:1] == ["NONE"]
        )
    ]
    assert missing == []


def test_every_dependency_waits_on_health_or_completion(stack: Any) -> None:
    for name, service in stack.services.items():
        for target, spec in _depends_on(service).items():
            assert target in stack.services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in stack.services[target], f"{target} has no healthcheck"
            else:
                assert _one_shot(stack.services[target]), f"{target} is not a one-shot job"


def test_one_shot_jobs_are_awaited_by_someone(stack: Any) -> None:
    awaited = {
        target
        for service in stack.services.values()
        for target, spec in _depends_on(service).items()
        if spec["condition"] == "service_completed_successfully"
    }
    one_shots = {name for name, service in stack.services.items() if _one_shot(service)}
    assert one_shots == awaited


def test_start_order_has_no_cycle(stack: Any) -> None:
    graph = {name: set(_depends_on(service)) for name, service in stack.services.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the assertion message is the point
        pytest.fail(f"depends_on cycle: {exc.args[1]}")
    assert order[0] in {"redis", "postgres"}


def test_secret_references_are_required_never_defaulted(stack: Any) -> None:
    loose = [
        f"${{{ref.name}{ref.op}{ref.arg}}}"
        for ref in stack.references()
        if SECRET_NAME.search(ref.name) and ref.op != ":?"
    ]
    assert loose == []


def test_secret_values_come_only_from_the_environment(stack: Any) -> None:
    """Every secret-looking value is a `${VAR:?...}` reference, also inside URLs."""
    for name, service in stack.raw["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if SECRET_NAME.search(key):
                refs = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}", str(value))
                assert refs, f"{name}: {key} is not a required ${{VAR:?...}} reference"
    for text in [*_strings(stack.raw)]:
        for match in URL_PASSWORD.finditer(text):
            assert re.fullmatch(r"\$\{[A-Za-z_]\w*:\?[^}]*\}", match["password"]), text
        assert not PLACEHOLDERS.search(text), f"placeholder credential in {text!r}"


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _published(port: Any) -> tuple[str, int]:
    """(host ip, host port) of one `ports` entry, short or long syntax."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), int(port["published"])
    parts = str(port).split(":")
    assert len(parts) == 3, f"{port!r} does not name the host interface"
    return parts[0], int(parts[1])


def test_host_ports_bind_loopback_only(stack: Any) -> None:
    published: dict[str, set[int]] = {}
    for name, service in stack.services.items():
        for port in service.get("ports", []):
            host_ip, host_port = _published(port)
            assert host_ip == "127.0.0.1", f"{name}: {port!r} is reachable from the network"
            published.setdefault(name, set()).add(host_port)
    assert published == EXPECTED_PORTS


def test_images_are_pinned(stack: Any) -> None:
    for name, service in stack.services.items():
        image = service.get("image")
        assert image, f"{name} names no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        if "build" not in service:  # pulled, not built here: an exact release
            assert re.search(r"\d", tag) and not re.fullmatch(r"\d+", tag), f"{name}: {image}"


def test_state_lives_in_named_volumes(stack: Any) -> None:
    declared = set(stack.config.get("volumes", {}))
    used = set()
    for name, service in stack.services.items():
        for volume in service.get("volumes", []):
            source, _target, *mode = str(volume).split(":")
            if source.startswith((".", "/")):  # a bind mount: only our config, read-only
                assert source.startswith("./docker/") and mode == ["ro"], f"{name}: {volume}"
            else:
                used.add(source)
    assert used == declared


def test_redis_keeps_every_message(stack: Any) -> None:
    command = " ".join(stack.command("redis"))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any("/data" in str(volume) for volume in stack.services["redis"]["volumes"])


def test_postgres_creates_the_mlflow_and_airflow_databases(stack: Any) -> None:
    postgres = stack.environment("postgres")
    mounts = [str(v) for v in stack.services["postgres"]["volumes"]]
    assert "./docker/postgres:/docker-entrypoint-initdb.d:ro" in mounts
    mlflow_url = stack.environment("mlflow")["MLFLOW_BACKEND_STORE_URI"]
    airflow_url = stack.environment("airflow-scheduler")["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert mlflow_url.endswith(f"@postgres:5432/{postgres['MLFLOW_POSTGRES_DB']}")
    assert airflow_url.endswith(f"@postgres:5432/{postgres['AIRFLOW_POSTGRES_DB']}")
    # The monitoring schema goes into POSTGRES_DB, where the services look for it.
    assert stack.environment("postgres-monitoring-init")["POSTGRES_DB"] == postgres["POSTGRES_DB"]
    assert stack.command("postgres-monitoring-init") == ["churnops", "db", "upgrade"]


def test_airflow_runs_the_airflow_3_components(stack: Any) -> None:
    commands = {name: stack.command(name) for name in stack.services if name.startswith("airflow-")}
    assert commands == {
        "airflow-init": ["version"],
        "airflow-apiserver": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
    }
    for name in commands:
        env = stack.environment(name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:8080/"
        )
    # Login redirects go to the base URL: it must be the published host port.
    base_url = stack.environment("airflow-apiserver")["AIRFLOW__API__BASE_URL"]
    host_port = _published(stack.services["airflow-apiserver"]["ports"][0])[1]
    assert base_url.rstrip("/").endswith(f":{host_port}")
    init = stack.environment("airflow-init")
    assert init["_AIRFLOW_DB_MIGRATE"] == "true" and init["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_only_minio_and_its_setup_job_hold_the_root_key(stack: Any) -> None:
    holders = {
        name
        for name, service in stack.raw["services"].items()
        if "MINIO_ROOT_PASSWORD" in (service.get("environment") or {})
    }
    assert holders == {"minio", "minio-setup"}
    for name in [*stack.workers(), "bridge", "mlflow"]:
        env = stack.environment(name)
        assert "MINIO_ROOT_PASSWORD" not in env, name
    assert (
        stack.environment("mlflow")["AWS_ACCESS_KEY_ID"]
        == (stack.environment("bridge")["MINIO_SERVICE_USER"])
    )


def test_redis_demands_a_password_that_every_client_url_carries(stack: Any) -> None:
    command = stack.raw["services"]["redis"]["command"]
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")
    assert stack.raw["services"]["redis"]["environment"]["REDISCLI_AUTH"] == password
    urls = [text for text in _strings(stack.raw) if "redis://" in text]
    assert len(urls) >= 3, "the services', Airflow's and Flower's broker URLs"
    for url in urls:
        assert f"redis://default:{password}@" in url, url
    assert (
        stack.raw["services"]["minio"]["environment"]["MINIO_NOTIFY_REDIS_PASSWORD_1"] == password
    )
