"""Loading compose.yaml the way Compose does, for static checks (no Docker engine runs here).

`interpolate` implements the Compose Specification's variable syntax (`$$`, `$VAR`, `${VAR}`,
`${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`),
so the tests see the same values a `docker compose config` would, given an environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"

# The secrets compose must demand; test values that no placeholder list contains.
FAKE_SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-0123456789abcdef",
    "MINIO_ROOT_USER": "churnops-test-admin",
    "MINIO_ROOT_PASSWORD": "minio-test-0123456789abcdef",
    "AIRFLOW__CORE__FERNET_KEY": "fernet-test-0123456789abcdef",
    "_AIRFLOW_WWW_USER_PASSWORD": "airflow-test-0123456789abcdef",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-test-0123456789abcdef",
    "MINIO_SERVICE_USER": "churnops-test-services",
    "MINIO_SERVICE_PASSWORD": "minio-services-0123456789abcdef",
    "MINIO_UPLOAD_USER": "churnops-test-upload",
    "MINIO_UPLOAD_PASSWORD": "minio-upload-0123456789abcdef",
    "REDIS_PASSWORD": "redis-test-0123456789abcdef",
    "GRAFANA_ADMIN_PASSWORD": "grafana-test-0123456789abcdef",
    "GRAFANA_DB_PASSWORD": "grafana-db-test-0123456789abcdef",
}

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(ValueError):
    """A `${VAR:?err}` / `${VAR?err}` whose variable is unset: compose refuses to start."""


@dataclass(frozen=True)
class Reference:
    """One `${...}` in the file: variable, operator (`:?`, `:-`, ... or ''), argument."""

    name: str
    op: str
    arg: str


def references(text: str) -> list[Reference]:
    found = []
    for match in _VAR.finditer(text):
        if match["escaped"]:
            continue
        name = match["braced"] or match["bare"]
        found.append(Reference(name, match["op"] or "", match["arg"] or ""))
    return found


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        is_set, non_empty = value is not None, bool(value)
        if (op == ":?" and not non_empty) or (op == "?" and not is_set):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":-":
            return value if non_empty else arg  # type: ignore[return-value]
        if op == "-":
            return value if is_set else arg  # type: ignore[return-value]
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if is_set else ""
        return value or ""

    return _VAR.sub(replace, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """The document with every string interpolated, as Compose does before validating it."""
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def strings(node: Any) -> list[str]:
    """Every string value in a document (keys excluded)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, `#` comments and unquoted inline ` # comments` dropped (dotenv rules)."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        env[key.strip()] = value.strip("'\"")
    return env


@dataclass(frozen=True)
class Stack:
    raw: dict[str, Any]  # parsed YAML, anchors merged, not interpolated
    config: dict[str, Any]  # interpolated with .env.example plus FAKE_SECRETS
    env: dict[str, str]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.config["services"]  # type: ignore[no-any-return]

    def environment(self, service: str) -> dict[str, Any]:
        env = self.services[service].get("environment", {})
        if isinstance(env, list):
            return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
        return env  # type: ignore[no-any-return]

    def command(self, service: str) -> list[str]:
        command = self.services[service].get("command", [])
        return command.split() if isinstance(command, str) else list(command)

    def references(self) -> list[Reference]:
        """Every variable reference in the file, as written (before interpolation)."""
        return [ref for text in strings(self.raw) for ref in references(text)]

    def workers(self) -> dict[str, list[str]]:
        """Services that run a Celery worker: name -> command."""
        return {
            name: self.command(name)
            for name in self.services
            if self.command(name)[:1] == ["celery"] and "worker" in self.command(name)
        }


def load_stack(env: Mapping[str, str] | None = None) -> Stack:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    if env is None:
        env = {**read_env_file(ENV_EXAMPLE), **FAKE_SECRETS}
    return Stack(raw=raw, config=interpolate(raw, env), env=dict(env))


@pytest.fixture(scope="session")
def stack() -> Stack:
    """compose.yaml as `docker compose config` sees it with .env.example and test secrets."""
    return load_stack()


@pytest.fixture(scope="session")
def stack_with_env() -> Callable[[Mapping[str, str]], Stack]:
    """Load compose.yaml with another environment (raises ValueError for a missing secret)."""
    return load_stack


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)
