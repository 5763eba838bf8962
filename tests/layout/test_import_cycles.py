"""No import cycle among the project's modules, type-only imports included.

A cycle that closes through a `TYPE_CHECKING` import still means a name lives in the wrong
module, and it becomes a runtime cycle the day someone moves that import out of its guard.
The graph is read from the source with `ast`, importing nothing: an edge for every `import a.b`
and `from a.b import c` (to the module `a.b.c` when c is one, else to `a.b`), wherever the
statement sits, relative imports resolved against the importing package.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [
    ROOT / "shared" / "src",
    *sorted((ROOT / "services").glob("*/src")),
    ROOT / "airflow" / "dags",
]


def _modules(roots: list[Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every module under the source roots."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                found[".".join(parts)] = path
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - node.level + 1]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _targets(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules one module's import statements reach."""
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in known else base)
    return (targets & known) - {module}


def import_graph(roots: list[Path] = SOURCE_ROOTS) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = _modules(roots)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = _targets(tree, module, path.name == "__init__.py", set(modules))
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_graph_sees_the_project() -> None:
    """The check has something to check: every package, and imports known to be there."""
    graph = import_graph()
    assert "churnops_common.routing" in graph["churnops_common.dispatch"]
    assert {m.split(".")[0] for m in graph} >= {
        "churnops_common",
        "churnops_quality",
        "churnops_trainer",
        "churnops_scorer",
        "churnops_monitor",
        "churnops_ingest",
        "churnops_dags",
    }


def test_no_import_cycle() -> None:
    cycle = cycle_in(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(reversed(cycle or []))


@pytest.mark.parametrize(
    "b_source",
    [
        "from pkg.a import A\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        "def late():\n    import pkg.a\n",
        "from pkg import a\n",
    ],
    ids=["plain", "type-only-relative", "in-a-function", "from-package"],
)
def test_a_cycle_is_found(tmp_path: Path, b_source: str) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import B\nA = 1\n")
    (package / "b.py").write_text(b_source + "B = 1\n")
    assert set(cycle_in(import_graph([tmp_path])) or []) == {"pkg.a", "pkg.b"}
