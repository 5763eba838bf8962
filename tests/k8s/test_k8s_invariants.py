"""The rules of the deployment that no schema can see.

Each worker runs compose.yaml's Celery command on its routed queue and KEDA watches that queue's
list; a scale-down never cuts a task short; every Secret key referenced is in an example file;
images are the ones compose builds, pinned; pods run as non-root on a read-only root; the network
lets workers reach Redis, Postgres, S3 and MLflow only.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from churnops_common.celery_app import time_limits_s
from churnops_common.routing import SERVICE_QUEUES, TRAINER
from churnops_common.settings import Settings
from tests.k8s.manifests import (
    CONFIG_OUTSIDE_SETTINGS,
    REDIS_URL,
    REPO,
    SECRET_EXAMPLES,
    VERSION,
    Rendered,
    containers,
    env_of,
    option,
    pod_spec,
    read_env_file,
)

# Seconds a worker needs after its task's hard limit to ack, close and exit.
SHUTDOWN_MARGIN_S = 30
# Which compose service builds the image of each workload that is not a worker.
COMPOSE_SERVICE_OF = {
    "bridge": "bridge",
    "db-migrate": "postgres-monitoring-init",
    "mlflow": "mlflow",
    "flower": "flower",
    "minio-setup": "minio-setup",
}


def _settings(config: dict[str, str]) -> Settings:
    fields = {k.lower(): v for k, v in config.items() if k not in CONFIG_OUTSIDE_SETTINGS}
    return Settings(_env_file=None, **fields)


def _repository(image: str) -> str:
    # compose writes `churnops/x:${CHURNOPS_IMAGE_TAG:-dev}`: the tag is all after the first colon.
    return image.partition(":")[0]


def _worker_container(worker: dict[str, Any]) -> dict[str, Any]:
    [container] = pod_spec(worker)["containers"]
    return container


# ---- workers, queues, autoscaling -------------------------------------------------------------


def test_one_worker_per_routed_queue(overlay: Rendered) -> None:
    assert sorted(overlay.workers()) == sorted(SERVICE_QUEUES)


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_worker_runs_composes_command(
    overlay: Rendered, compose: dict[str, Any], queue: str
) -> None:
    command = _worker_container(overlay.workers()[queue])["command"]
    assert command == compose["services"][queue]["command"]
    assert option(command, "-Q", "--queues") == queue
    assert "args" not in _worker_container(overlay.workers()[queue])


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_each_queue_scales_on_its_own_list(prod: Rendered, queue: str) -> None:
    scaled = prod.get("ScaledObject", queue)
    target = prod.workers()[scaled["spec"]["scaleTargetRef"]["name"]]
    container = _worker_container(target)
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    meta = trigger["metadata"]
    assert meta["listName"] == option(container["command"], "-Q") == queue
    # One waiting task per Celery process: a replica is added per --concurrency tasks waiting.
    assert meta["listLength"] == option(container["command"], "--concurrency")
    assert int(meta["activationListLength"]) >= 0
    # KEDA reads the address from the target's own environment, and the workers' database.
    config = prod.config()
    assert meta["addressFromEnv"] in config
    assert meta["databaseIndex"] == config["REDIS_DB"]
    auth = prod.get("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {"password"}
    assert 0 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_every_worker_is_autoscaled_in_prod_only(rendered: dict[str, Rendered]) -> None:
    prod, dev = rendered["prod"], rendered["dev"]
    targets = {s["spec"]["scaleTargetRef"]["name"] for s in prod.of_kind("ScaledObject")}
    assert targets == set(prod.workers())
    # The HPA owns the count in prod; dev runs one of each and needs no KEDA.
    assert all("replicas" not in w["spec"] for w in prod.workers().values())
    assert not dev.of_kind("ScaledObject") and not dev.of_kind("TriggerAuthentication")
    assert all(w["spec"]["replicas"] == 1 for w in dev.workers().values())


def test_the_trainer_cools_down_longer_than_a_training(prod: Rendered) -> None:
    settings = _settings(prod.config())
    cooldown = prod.get("ScaledObject", TRAINER)["spec"]["cooldownPeriod"]
    assert cooldown > time_limits_s(TRAINER, settings)[1]


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_a_scale_down_never_cuts_a_task_short(overlay: Rendered, queue: str) -> None:
    """SIGTERM is Celery's warm shutdown; the pod is killed only after the grace period."""
    settings = _settings(overlay.config())
    _, hard_limit = time_limits_s(queue, settings)  # also checks: below the visibility timeout
    grace = pod_spec(overlay.workers()[queue])["terminationGracePeriodSeconds"]
    assert grace >= hard_limit + SHUTDOWN_MARGIN_S


def test_prod_spreads_workers_and_budgets_disruptions(prod: Rendered) -> None:
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: p
        for p in prod.of_kind("PodDisruptionBudget")
    }
    for name, worker in prod.workers().items():
        assert budgets[name]["spec"]["maxUnavailable"] == 1, name
        [term] = pod_spec(worker)["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["matchLabelKeys"] == ["app.kubernetes.io/name"]


def test_the_bridge_runs_once(overlay: Rendered) -> None:
    bridge = overlay.get("Deployment", "bridge")
    assert bridge["spec"]["replicas"] == 1
    assert bridge["spec"]["strategy"]["type"] == "Recreate"  # never two at once


# ---- metrics ----------------------------------------------------------------------------------


def test_every_worker_and_the_bridge_are_scraped_where_they_serve(
    overlay: Rendered, compose: dict[str, Any]
) -> None:
    """Pods annotated for Prometheus on the port their settings serve on (compose's port)."""
    port = overlay.config()["METRICS_PORT"]
    assert port == str(compose["x-churnops-env"]["METRICS_PORT"])
    assert overlay.config()["METRICS_BIND"] == "0.0.0.0"
    pods = [*overlay.workers().values(), overlay.get("Deployment", "bridge")]
    for pod in pods:
        template = pod["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == port
        ports = [p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]]
        assert ports == [int(port)], pod["metadata"]["name"]
    [policy] = [
        p
        for p in overlay.of_kind("NetworkPolicy")
        if p["metadata"]["name"].endswith("metrics-scrape")
    ]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": int(port)}]


# ---- probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_worker_probes_ping_their_own_node(overlay: Rendered, queue: str) -> None:
    container = _worker_container(overlay.workers()[queue])
    for probe in ("startupProbe", "livenessProbe"):
        shell, flag, script = container[probe]["exec"]["command"]
        assert (shell, flag) == ("sh", "-c")
        assert " inspect ping " in f" {script} "
        assert '-d "celery@$HOSTNAME"' in script  # the pod's own node, not any node
        assert '-b "$REDIS_URL"' in script  # the broker the worker itself uses
        assert container[probe]["timeoutSeconds"] > int(option(script.split(), "--timeout"))


# ---- settings and secrets ---------------------------------------------------------------------


def test_config_names_settings_fields(overlay: Rendered) -> None:
    config = overlay.config()
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(set(config) - fields - CONFIG_OUTSIDE_SETTINGS) == []
    settings = _settings(config)  # every value parses
    assert settings.churnops_mode == "stack"


def test_redis_url_is_built_the_same_way_everywhere(overlay: Rendered) -> None:
    seen = []
    for workload in overlay.workloads():
        for container in containers(workload):
            env = env_of(container)
            for name in ("REDIS_URL", "CELERY_BROKER_URL"):
                if name in env:
                    seen.append(workload["metadata"]["name"])
                    assert env[name]["value"] == REDIS_URL, workload["metadata"]["name"]
    assert set(overlay.workers()) | {"bridge", "flower"} <= set(seen)


def _secret_refs(overlay: Rendered) -> set[tuple[str, str | None]]:
    """(Secret name, key) for each reference; key None: the whole Secret (envFrom)."""
    refs: set[tuple[str, str | None]] = set()
    for workload in overlay.workloads():
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    refs.add((source["secretRef"]["name"], None))
            for item in container.get("env", []):
                if ref := item.get("valueFrom", {}).get("secretKeyRef"):
                    refs.add((ref["name"], ref["key"]))
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                refs.add((volume["secret"]["secretName"], None))
    for auth in overlay.of_kind("TriggerAuthentication"):
        refs |= {(r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    return refs


def test_every_secret_referenced_is_in_an_example(overlay: Rendered) -> None:
    refs = _secret_refs(overlay)
    assert refs, "no Secret referenced at all"
    for name, key in refs:
        assert name in SECRET_EXAMPLES, f"Secret {name} has no example file"
        if key is not None:
            assert key in read_env_file(SECRET_EXAMPLES[name]), f"{name}: no key {key}"


def test_secrets_are_referenced_never_shipped(overlay: Rendered) -> None:
    assert overlay.of_kind("Secret") == []
    for name, path in SECRET_EXAMPLES.items():
        assert all(value == "" for value in read_env_file(path).values()), name


def test_platform_secret_holds_settings_only(overlay: Rendered) -> None:
    # It is imported whole (envFrom): every key must mean something to Settings.
    keys = set(read_env_file(SECRET_EXAMPLES["churnops-platform"]))
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(keys - fields) == ["REDIS_PASSWORD"]


# ---- images -----------------------------------------------------------------------------------


def _expected_repository(compose: dict[str, Any], workload: str, overlay: Rendered) -> str:
    service = workload if workload in overlay.workers() else COMPOSE_SERVICE_OF[workload]
    return _repository(compose["services"][service]["image"])


def test_images_are_the_ones_compose_builds(overlay: Rendered, compose: dict[str, Any]) -> None:
    for workload in overlay.workloads():
        name = workload["metadata"]["name"]
        for container in containers(workload):
            image = container["image"]
            assert _repository(image) == _expected_repository(compose, name, overlay), name
            if image.startswith("churnops/"):
                # Images built from this commit carry its version (compose: CHURNOPS_IMAGE_TAG).
                assert image == f"{_repository(image)}:{VERSION}", name
            else:
                assert image == compose["services"][COMPOSE_SERVICE_OF[name]]["image"], name


def test_no_image_floats(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        for container in containers(workload):
            repository, _, tag = container["image"].rpartition(":")
            assert repository and "/" not in tag, container["image"]
            assert tag not in {"", "latest", "dev"}, container["image"]


# ---- security ---------------------------------------------------------------------------------


def test_pods_run_as_non_root_with_a_read_only_root(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0, name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(workload):
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False, name
            assert own["readOnlyRootFilesystem"] is True, name
            assert own["capabilities"]["drop"] == ["ALL"], name
            assert "privileged" not in own, name


def test_every_container_has_requests_and_limits(overlay: Rendered) -> None:
    for workload in overlay.workloads():
        for container in containers(workload):
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, workload[
                    "metadata"
                ]["name"]


def test_namespaces_enforce_the_restricted_pod_security_standard(overlay: Rendered) -> None:
    [namespace] = overlay.of_kind("Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {o["metadata"].get("namespace") for o in overlay.objects if o is not namespace} == {
        namespace["metadata"]["name"]
    }


# ---- network ----------------------------------------------------------------------------------


def _port(address: str, default: int) -> int:
    return urlsplit(f"//{address}").port or default


def _egress(policy: dict[str, Any]) -> set[tuple[str, str, int]]:
    """(peer, protocol, port) for each rule: peer = 'dns', 'pod:<name>' or 'ip:<cidr>'."""
    allowed = set()
    for rule in policy["spec"].get("egress", []):
        for peer in rule["to"]:
            if "ipBlock" in peer:
                label = f"ip:{peer['ipBlock']['cidr']}"
            elif peer.get("podSelector", {}).get("matchLabels", {}).get("k8s-app") == "kube-dns":
                label = "dns"
            else:
                label = f"pod:{peer['podSelector']['matchLabels']['app.kubernetes.io/name']}"
            allowed |= {(label, p["protocol"], p["port"]) for p in rule["ports"]}
    return allowed


def test_workers_reach_redis_postgres_s3_and_mlflow_only(overlay: Rendered) -> None:
    config = overlay.config()
    settings = _settings(config)
    mlflow = urlsplit(config["MLFLOW_TRACKING_URI"])
    [policy] = [
        p
        for p in overlay.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/component": "worker"}
    ]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    anywhere = "ip:0.0.0.0/0"
    assert _egress(policy) == {
        ("dns", "UDP", 53),
        ("dns", "TCP", 53),
        (f"pod:{mlflow.hostname}", "TCP", mlflow.port),
        (anywhere, "TCP", _port(config["REDIS_ADDRESS"], 6379)),
        (anywhere, "TCP", settings.postgres_port),
        (anywhere, "TCP", _port(settings.minio_endpoint, 443 if settings.minio_secure else 80)),
    }


def test_everything_is_denied_unless_allowed(overlay: Rendered) -> None:
    deny = overlay.get("NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "churnops"}}
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for workload in overlay.workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "churnops", workload["metadata"]["name"]


def test_mlflow_is_the_service_the_workers_call(overlay: Rendered) -> None:
    tracking = urlsplit(overlay.config()["MLFLOW_TRACKING_URI"])
    service = overlay.get("Service", tracking.hostname or "")
    assert [p["port"] for p in service["spec"]["ports"]] == [tracking.port]
    [container] = pod_spec(overlay.get("Deployment", "mlflow"))["containers"]
    allowed = option(
        [part for a in container["command"] for part in a.split("=", 1)], "--allowed-hosts"
    ).split(",")
    assert tracking.netloc in allowed, "MLflow would answer 403 to the workers"
    bucket = _settings(overlay.config()).s3_artifact_bucket
    assert f"--default-artifact-root=s3://{bucket}/" in container["command"]


# ---- the S3 bootstrap and Airflow ----------------------------------------------------------------


def test_minio_setup_makes_the_buckets_settings_name() -> None:
    script = (REPO / "deploy" / "k8s" / "base" / "minio-setup.sh").read_text(encoding="utf-8")
    compose_script = (REPO / "docker" / "minio" / "setup.sh").read_text(encoding="utf-8")
    bucket = re.compile(r"\$\{(\w+_BUCKET):-([\w-]+)\}")
    found = set(bucket.findall(script))
    assert found == set(bucket.findall(compose_script))
    for name, default in found:
        assert Settings.model_fields[name.lower()].default == default, name


# ---- the ingest worker ------------------------------------------------------------------------


def test_only_the_ingest_worker_gets_the_sources_and_their_credentials(overlay: Rendered) -> None:
    path = overlay.config()["INGEST_SOURCES_FILE"]
    folder, _, name = path.rpartition("/")
    for worker_name, worker in overlay.workers().items():
        container = _worker_container(worker)
        secrets = {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s}
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if worker_name != "ingest":
            assert secrets == {"churnops-platform"}, worker_name
            assert folder not in mounts, worker_name
            continue
        assert secrets == {"churnops-platform", "churnops-ingest"}
        [optional] = [s for s in container["envFrom"] if s.get("secretRef", {}).get("optional")]
        assert optional["secretRef"]["name"] == "churnops-ingest"  # starts without sources
        [volume] = [v for v in pod_spec(worker)["volumes"] if v["name"] == mounts[folder]]
        config_map = overlay.get("ConfigMap", volume["configMap"]["name"])
        assert name in config_map["data"]


def test_the_ingest_worker_alone_reaches_https_sources(overlay: Rendered) -> None:
    [policy] = [
        p
        for p in overlay.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": "ingest"}
    ]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert _egress(policy) == {("ip:0.0.0.0/0", "TCP", 443)}
