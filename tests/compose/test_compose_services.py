"""The services' commands and settings name real things: Celery apps, queues, Settings fields."""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery

from churnops_common.routing import SERVICE_QUEUES, subscriptions_of_queue
from churnops_common.settings import Settings, get_settings

SETUP_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "minio" / "setup.sh"
# Settings fields the services' shared environment leaves out on purpose, and why.
NOT_PASSED_TO_SERVICES = {
    "churnops_home": "set by each image (a folder in the non-root user's home)",
    "monitoring_db_url": "built from POSTGRES_*; an override would bypass the stack's Postgres",
    "airflow__core__fernet_key": "Airflow's secret: only the Airflow containers get it",
    "airflow_www_user_username": "Airflow's login: only airflow-init uses it",
    "airflow_www_user_password": "Airflow's login: only airflow-init uses it",
    "ingest_api_token": "a source credential: only the ingest worker reads it (.env.ingest)",
    "minio_root_user": "MinIO's admin: only minio and minio-setup hold it",
    "minio_root_password": "MinIO's admin: only minio and minio-setup hold it",
    "minio_upload_user": "`churnops drop`'s upload-only user: the host CLI's, not the services'",
    "minio_upload_password": "`churnops drop`'s upload-only user: the host CLI's",
    "grafana_db_password": "Grafana's role: only the schema init (and Grafana) get it",
    "command_reports": "how the host CLI's `churnops score` runs its follow-ups; no service",
}
# Environment names the services read outside Settings.
READ_OUTSIDE_SETTINGS = {"CHURNOPS_LOG_LEVEL"}


def _option(command: list[str], *names: str) -> str:
    for index, part in enumerate(command):
        if part in names:
            return command[index + 1]
        for name in names:
            if name.startswith("--") and part.startswith(f"{name}="):
                return part.split("=", 1)[1]
    raise AssertionError(f"{names[0]} missing from {command}")


@pytest.fixture(autouse=True)
def _embedded_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Importing a worker module builds its Celery app from the settings: embedded mode here.
    monkeypatch.setenv("CHURNOPS_MODE", "embedded")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _app(spec: str) -> Celery:
    module, _, attribute = spec.partition(":")
    app = getattr(importlib.import_module(module), attribute or "app")
    assert isinstance(app, Celery), f"{spec} is not a Celery app"
    return app


def test_one_worker_service_per_queue(stack: Any) -> None:
    queues = {name: _option(command, "-Q", "--queues") for name, command in stack.workers().items()}
    assert sorted(queues.values()) == sorted(SERVICE_QUEUES)
    assert all(name == queue for name, queue in queues.items())


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_worker_runs_a_real_app_on_its_routed_queue(stack: Any, queue: str) -> None:
    command = stack.workers()[queue]
    spec = _option(command, "-A", "--app")
    assert spec == f"churnops_{queue}.worker:app"
    app = _app(spec)
    assert _option(command, "-Q", "--queues") in SERVICE_QUEUES
    # Every task the routing table sends to this queue has a consumer in the stack.
    routed = {sub.task_name for sub in subscriptions_of_queue(queue)}
    assert sorted(routed - set(app.tasks)) == []


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_worker_healthcheck_pings_its_own_node(stack: Any, queue: str) -> None:
    test = stack.services[queue]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    spec = _option(stack.workers()[queue], "-A", "--app")
    # `$$` in the file is a literal `$`: the container's shell expands its own HOSTNAME.
    assert test[1].startswith(f"celery -A {spec} inspect ping -d ")
    assert '"celery@${HOSTNAME}"' in test[1]


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_worker_can_scale(stack: Any, queue: str) -> None:
    service = stack.services[queue]
    assert "container_name" not in service
    assert "ports" not in service
    assert "hostname" not in service  # node names must differ between replicas


def test_trainer_runs_one_training_at_a_time(stack: Any) -> None:
    assert _option(stack.workers()["trainer"], "--concurrency", "-c") == "1"


def test_service_environment_names_settings_fields(stack: Any) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    unknown = set(stack.raw["x-churnops-env"]) - fields - READ_OUTSIDE_SETTINGS
    assert sorted(unknown) == []


def test_every_settings_field_reaches_the_services(stack: Any) -> None:
    passed = {name.lower() for name in stack.raw["x-churnops-env"]}
    missing = set(Settings.model_fields) - passed - set(NOT_PASSED_TO_SERVICES)
    assert sorted(missing) == [], "add them to x-churnops-env in compose.yaml"


def test_compose_defaults_agree_with_settings(stack: Any) -> None:
    for ref in stack.references():
        field = Settings.model_fields.get(ref.name.lower())
        if field is not None and ref.op == ":-":
            assert ref.arg == str(field.default), f"${{{ref.name}:-{ref.arg}}}"


def test_services_share_one_environment(stack: Any) -> None:
    shared = stack.environment("bridge")
    for name in stack.workers():
        assert stack.environment(name) == shared, name
    assert shared["CHURNOPS_MODE"] == "stack"
    # The schema init also lets Grafana's read-only role log in: it alone gets that password.
    init = stack.environment("postgres-monitoring-init")
    assert init.pop("GRAFANA_DB_PASSWORD") == stack.environment("grafana")["GRAFANA_DB_PASSWORD"]
    assert init == shared


def test_services_reach_each_other_by_service_name(stack: Any) -> None:
    env = stack.environment("bridge")
    assert urlsplit(env["REDIS_URL"]).hostname in stack.services
    assert env["POSTGRES_HOST"] in stack.services
    assert env["MINIO_ENDPOINT"].split(":")[0] in stack.services
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL"):
        assert urlsplit(env[key]).hostname in stack.services, key


def test_mlflow_answers_the_hosts_that_call_it(stack: Any) -> None:
    command = stack.command("mlflow")
    allowed = _option(command, "--allowed-hosts").split(",")
    tracking = urlsplit(stack.environment("bridge")["MLFLOW_TRACKING_URI"]).netloc
    host_port = next(p for p in stack.services["mlflow"]["ports"]).rsplit(":", 1)[0]
    # The same rule as mlflow.server.security_utils.is_allowed_host_header.
    for host in (tracking, host_port.replace("127.0.0.1", "localhost"), host_port):
        assert any(
            fnmatch.fnmatch(host, pattern) if "*" in pattern else host == pattern
            for pattern in allowed
        ), f"MLflow would answer 403 to Host: {host}"
    assert "*" not in allowed
    env = stack.environment("mlflow")
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql")
    bucket = Settings.model_fields["s3_artifact_bucket"].default
    assert _option(command, "--default-artifact-root") == f"s3://{bucket}/"


def test_minio_notifies_the_list_the_bridge_reads(stack: Any) -> None:
    minio = stack.environment("minio")
    target = stack.environment("minio-setup")["MINIO_NOTIFY_TARGET_ID"]
    assert minio[f"MINIO_NOTIFY_REDIS_ENABLE_{target}"] == "on"
    assert minio[f"MINIO_NOTIFY_REDIS_FORMAT_{target}"] == "access"
    redis_url = urlsplit(stack.environment("bridge")["REDIS_URL"])
    address = f"{redis_url.hostname}:{redis_url.port}"
    assert minio[f"MINIO_NOTIFY_REDIS_ADDRESS_{target}"] == address
    assert minio[f"MINIO_NOTIFY_REDIS_PASSWORD_{target}"] == redis_url.password
    assert redis_url.path in ("", "/", "/0"), "MinIO pushes to Redis database 0"
    assert (
        minio[f"MINIO_NOTIFY_REDIS_KEY_{target}"]
        == (stack.environment("bridge")["MINIO_NOTIFY_REDIS_KEY"])
    )
    queue_dir = minio[f"MINIO_NOTIFY_REDIS_QUEUE_DIR_{target}"]
    volumes = [str(volume).split(":") for volume in stack.services["minio"]["volumes"]]
    mounts = {target: source for source, target, *_ in volumes}
    assert mounts.get(queue_dir) in stack.config["volumes"], "the queue dir must outlive restarts"


def test_minio_setup_makes_every_bucket_and_the_landing_notification() -> None:
    script = SETUP_SCRIPT.read_text(encoding="utf-8")
    for field in (
        "minio_landing_bucket",
        "s3_artifact_bucket",
        "minio_models_bucket",
        "minio_reports_bucket",
        "minio_predictions_bucket",
    ):
        # The script's default for each bucket is the Settings default.
        assert f"${{{field.upper()}:-{Settings.model_fields[field].default}}}" in script, field
    assert 'mc mb --ignore-existing "$alias/$bucket"' in script
    assert "mc event add" in script
    assert "arn:minio:sqs::${MINIO_NOTIFY_TARGET_ID}:redis" in script
    assert "--event put" in script  # s3:ObjectCreated:*, multipart uploads included
    assert "--ignore-existing" in script.split("mc event add", 1)[1]  # safe on every `up`


def test_ingest_worker_alone_reads_the_sources_credentials(stack: Any) -> None:
    """Database URLs and API tokens come from .env.ingest (not in git), for that worker only."""
    env_files = {
        name: service.get("env_file")
        for name, service in stack.services.items()
        if "env_file" in service
    }
    assert env_files == {"ingest": [{"path": ".env.ingest", "required": False}]}
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert ".env.ingest" in ignored


def test_ingest_sources_file_is_mounted_where_the_settings_point(stack: Any) -> None:
    path = stack.environment("bridge")["INGEST_SOURCES_FILE"]
    folder = path.rsplit("/", 1)[0]
    repo = Path(__file__).resolve().parents[2]
    for name in ("ingest", "airflow-scheduler"):
        mounts = {
            str(v).split(":")[1]: str(v).split(":")[0] for v in stack.services[name]["volumes"]
        }
        assert folder in mounts, name
        assert (repo / mounts[folder] / path.rsplit("/", 1)[1]).is_file(), name
    assert stack.environment("airflow-scheduler")["INGEST_SOURCES_FILE"] == path


def test_minio_setup_creates_least_privilege_users() -> None:
    script = SETUP_SCRIPT.read_text(encoding="utf-8")
    assert 'grant "$MINIO_SERVICE_USER" "$MINIO_SERVICE_PASSWORD" churnops-services' in script
    assert 'grant "$MINIO_UPLOAD_USER" "$MINIO_UPLOAD_PASSWORD" churnops-upload' in script
    upload = script.split('cat > "$policies/upload.json" <<JSON', 1)[1].split("JSON", 1)[0]
    assert '"Action": ["s3:PutObject", "s3:AbortMultipartUpload"' in upload
    assert '"Resource": ["arn:aws:s3:::$landing/*"]' in upload
    assert "GetObject" not in upload and "admin" not in upload
    services = script.split('cat > "$policies/services.json" <<JSON', 1)[1].split("JSON", 1)[0]
    assert '"Resource": [${resources%,}]' in services and "s3:*" not in services
