"""Each service's README opens with the same map of its modules, and the map is complete: every
module of the package is named in it, under the same parts in every service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
PARTS = ["shell", "use cases", "records", "pure core", "adapters"]


def _map(service: str) -> dict[str, str]:
    text = (ROOT / "services" / service / "README.md").read_text(encoding="utf-8")
    first = re.search(r"^## (.+)$", text, re.MULTILINE)
    assert first is not None and first.group(1) == "Modules", f"{service}: opens with {first}"
    section = text[first.end() : text.find("\n## ", first.end())]
    rows = re.findall(r"^\| ([a-z ]+) \| (.+) \|$", section, re.MULTILINE)
    return {part: cells for part, cells in rows if part != "part"}


def test_there_are_services() -> None:
    assert {"quality", "trainer", "scorer", "monitor", "ingest"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_readme_opens_with_the_module_map(service: str) -> None:
    assert list(_map(service)) == PARTS


@pytest.mark.parametrize("service", SERVICES)
def test_the_map_names_every_module(service: str) -> None:
    package = ROOT / "services" / service / "src" / f"churnops_{service}"
    named = " ".join(_map(service).values())
    modules = {
        f"{p.parent.name}/" if p.parent != package else p.name
        for p in package.rglob("*.py")
        if p.name != "__init__.py" or p.parent != package
    }
    missing = sorted(m for m in modules if f"`{m}`" not in named)
    assert missing == [], f"{service}'s README map leaves out {missing}"
