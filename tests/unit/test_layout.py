"""The house's floors, read from the imports (every import, lazy ones inside functions too):
no module imports the CLI or the API but themselves, `classifiers/` imports nothing from
`worker/`, no import circle, and no module over 850 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "classifiers")
MAX_LINES = 850


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")
    }


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, resolved to the longest module name that exists."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    names = set(modules)
    return {name: imports_of(path, names) - {name} for name, path in modules.items()}


def _top(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_nothing_below_imports_the_cli_or_the_api(graph: dict[str, set[str]]) -> None:
    upstairs = ("worker.cli", "worker.api")
    wrong = {
        name: sorted(i for i in imported if _top(i) in upstairs)
        for name, imported in graph.items()
        if _top(name) not in upstairs and name != "worker.__main__"
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_classifiers_import_nothing_from_worker(graph: dict[str, set[str]]) -> None:
    wrong = {n: sorted(i) for n, i in graph.items() if n.startswith("classifiers")}
    assert {n: [m for m in i if m.startswith("worker")] for n, i in wrong.items()} == {
        n: [] for n in wrong
    }


def test_no_import_circle(graph: dict[str, set[str]]) -> None:
    """A package's face (``__init__``) re-exporting its own modules is not a circle."""

    def edges(name: str) -> set[str]:
        return {m for m in graph[name] if not name.startswith(m + ".")}

    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(edges(name)):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_no_module_is_over_850_lines() -> None:
    long = {
        name: n
        for name, path in project_modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
