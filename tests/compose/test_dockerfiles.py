"""Every image compose builds: its Dockerfile exists, installs a real workspace package from the
lock file, runs as a non-root user on pinned base images, and copies only what the build context
(after .dockerignore) holds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from churnops_common.routing import SERVICE_QUEUES

REPO = Path(__file__).resolve().parents[2]
# One Dockerfile for every service's worker image: the service is a build argument.
WORKER_DOCKERFILE = "services/Dockerfile"


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path, build_args: dict[str, str] | None = None) -> list[Stage]:
    """Stages with their instructions; `\\` continuations joined, ARG defaults substituted in
    FROM lines and the build arguments (as compose passes them) in every instruction."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for name, value in (build_args or {}).items():
        text = text.replace(f"${{{name}}}", value)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and "=" in rest and not stages:
            name, value = rest.split("=", 1)
            args[name] = value
        elif keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest.split()[0])
            stages.append(Stage(image))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return stages


def _runs(stages: list[Stage]) -> str:
    return "\n".join(
        rest for stage in stages for keyword, rest in stage.instructions if keyword == "RUN"
    )


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _glob(pattern: str) -> re.Pattern[str]:
    """Docker's pattern rules: `*` and `?` within one folder, `**` across folders."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"{out}$")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops `path` or a folder above it; a later `!` re-includes."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        regex = _glob(pattern.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


@pytest.fixture(scope="module")
def builds(stack: Any) -> dict[str, dict[str, Any]]:
    return {name: s["build"] for name, s in stack.services.items() if "build" in s}


def _dockerfiles(builds: dict[str, dict[str, Any]]) -> set[str]:
    return {build["dockerfile"] for build in builds.values()}


def _stages(build: dict[str, Any]) -> list[Stage]:
    """A compose build's Dockerfile as that build reads it (its build arguments applied)."""
    return parse_dockerfile(REPO / build["dockerfile"], build.get("args"))


def test_every_build_uses_the_repository_root_and_an_existing_dockerfile(
    builds: dict[str, dict[str, Any]],
) -> None:
    for name, build in builds.items():
        assert build["context"] == ".", name
        assert (REPO / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} is missing"
    assert {WORKER_DOCKERFILE, "shared/Dockerfile", "airflow/Dockerfile"} <= _dockerfiles(builds)


def test_every_worker_is_built_from_the_one_worker_dockerfile(
    builds: dict[str, dict[str, Any]],
) -> None:
    """Each service's image: the one Dockerfile with the service as its build argument; no
    service keeps a Dockerfile of its own."""
    for service in SERVICE_QUEUES:
        assert builds[service]["dockerfile"] == WORKER_DOCKERFILE, service
        assert builds[service]["args"] == {"SERVICE": service}, service
    assert sorted(REPO.glob("services/*/Dockerfile")) == []


@pytest.mark.parametrize("service", SERVICE_QUEUES)
def test_service_image_installs_only_its_package_from_the_lock(service: str) -> None:
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    package = project["project"]["name"]
    stages = parse_dockerfile(REPO / WORKER_DOCKERFILE, {"SERVICE": service})
    copied = [rest for stage in stages for keyword, rest in stage.instructions if keyword == "COPY"]
    assert f"services/{service}/src services/{service}/src" in copied
    runs = _runs(stages)
    syncs = re.findall(r"uv sync ([^\n&]*)", runs)
    assert syncs, f"{service}: never runs uv sync"
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, sync
        assert re.search(rf"--package {re.escape(package)}(\s|$)", sync), sync
        assert "--all-packages" not in sync and "--all-extras" not in sync, sync


def test_every_python_image_copies_every_workspace_members_metadata() -> None:
    """`uv sync --frozen` reads the whole workspace: a member's missing pyproject breaks it."""
    members = ["shared/pyproject.toml"] + [f"{folder}/pyproject.toml" for folder in (
        str(p.parent.relative_to(REPO)) for p in sorted(REPO.glob("services/*/pyproject.toml"))
    )]  # fmt: skip
    for dockerfile in [WORKER_DOCKERFILE, "shared/Dockerfile"]:
        copied = {
            rest.split()[0]
            for stage in parse_dockerfile(REPO / dockerfile)
            for keyword, rest in stage.instructions
            if keyword == "COPY" and "--from=" not in rest
        }
        assert sorted(set(members) - copied) == [], dockerfile


def test_platform_image_installs_the_shared_package_without_extras() -> None:
    project = tomllib.loads((REPO / "shared" / "pyproject.toml").read_text())
    runs = _runs(parse_dockerfile(REPO / "shared" / "Dockerfile"))
    syncs = re.findall(r"uv sync ([^\n&]*)", runs)
    assert syncs
    for sync in syncs:
        assert f"--package {project['project']['name']}" in sync
        assert "--frozen" in sync and "--extra" not in sync and "--all-extras" not in sync


def test_airflow_image_extends_airflow_with_the_shared_package_only() -> None:
    stages = parse_dockerfile(REPO / "airflow" / "Dockerfile")
    assert stages[0].base.startswith("apache/airflow:3.3.2-python3.12")
    runs = _runs(stages)
    assert '"apache-airflow==3.3.2"' in runs  # pip must not move Airflow
    assert "/opt/churnops/shared" in runs and "[data]" not in runs
    assert "celery[redis]" in runs
    pyproject = REPO / "airflow" / "pyproject.toml"
    if pyproject.exists():  # the DAGs' own project pins the same Airflow
        deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
        assert "apache-airflow==3.3.2" in deps


def test_pinned_tools_match_the_lock_file(builds: dict[str, dict[str, Any]]) -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {pkg["name"]: pkg["version"] for pkg in lock["package"] if "version" in pkg}
    mlflow_runs = _runs(parse_dockerfile(REPO / "docker" / "mlflow" / "Dockerfile"))
    assert f'"mlflow=={locked["mlflow"]}"' in mlflow_runs
    for dockerfile in ("docker/mlflow/Dockerfile", "docker/flower/Dockerfile"):
        runs = _runs(parse_dockerfile(REPO / dockerfile))
        # Everything the lock file knows is held to its locked version.
        assert "uv export --frozen" in runs and "--constraint" in runs, dockerfile


def test_images_run_as_a_non_root_user_on_pinned_bases(builds: dict[str, dict[str, Any]]) -> None:
    for dockerfile in sorted(_dockerfiles(builds)):
        stages = parse_dockerfile(REPO / dockerfile)
        for stage in stages:
            base = stage.base
            tag = base.rpartition(":")[2]
            assert ":" in base and tag != "latest" and re.search(r"\d", tag), (dockerfile, base)
        users = [rest for keyword, rest in stages[-1].instructions if keyword == "USER"]
        if stages[-1].base.startswith("apache/airflow:"):
            assert users in ([], ["airflow"]), dockerfile  # the image's own non-root user
        else:
            assert users and users[-1] not in {"root", "0"}, dockerfile


def test_copied_paths_exist_and_survive_dockerignore(builds: dict[str, dict[str, Any]]) -> None:
    patterns = _dockerignore()
    for build in builds.values():
        dockerfile = build["dockerfile"]
        for stage in _stages(build):
            for keyword, rest in stage.instructions:
                if keyword != "COPY" or "--from=" in rest:
                    continue
                sources = [part for part in rest.split() if not part.startswith("--")][:-1]
                for source in sources:
                    assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such path"
                    assert not _ignored(source, patterns), f"{dockerfile}: {source} is ignored"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = _dockerignore()
    for path in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        "services/scorer/tests/x.py",
        "shared/src/churnops_common/__pycache__/x.pyc",
        ".churnops/landing/a.csv",
    ):
        assert _ignored(path, patterns), path
    assert not _ignored("shared/src/churnops_common/settings.py", patterns)


def test_workspace_packages_export_from_the_frozen_lock() -> None:
    """`uv sync --frozen --package X` in the images needs X in the lock file, consistent."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    packages = ["churnops-common"] + [
        tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]["name"]
        for folder in (f"services/{service}" for service in SERVICE_QUEUES)
    ]
    for package in packages:
        result = subprocess.run(
            [
                uv,
                "export",
                "--frozen",
                "--no-dev",
                "--package",
                package,
                "--no-hashes",
                "--no-emit-workspace",
                "--quiet",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "celery==" in result.stdout, package
