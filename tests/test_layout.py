"""The layout's rules, read from the code: which layer may import which, and no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The product's layers: the pipeline knows nothing of its readers or of how it is deployed.
FORBIDDEN = {
    "pipeline": ("dashboard", "pages", "streamlit", "infra", "streamlit_app", "tests", "bench"),
    "dashboard": ("infra", "pages", "tests", "bench"),
    "pages": ("infra", "tests", "bench"),
    "streamlit_app.py": ("infra", "tests", "bench"),
}


def imported_modules(source: str) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def files_of(part: str) -> list[Path]:
    path = ROOT / part
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def violations(part: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in files_of(part):
        for module in sorted(imported_modules(path.read_text())):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_it_must_not(part: str):
    assert violations(part, FORBIDDEN[part]) == []


def test_the_rule_catches_a_forbidden_import():
    assert imported_modules("def f():\n    from infra import cost\n") >= {"infra", "infra.cost"}
    assert imported_modules("import streamlit as st") == {"streamlit"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in files_of("pipeline")}
    graph = {}
    for name, path in modules.items():
        targets = {m for m in imported_modules(path.read_text()) if m in modules}
        # `from pipeline import x` names the package and its submodule x; only x counts.
        graph[name] = {t for t in targets if t != "pipeline" and t != name}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules on it, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_pipeline_module_imports_itself_round_a_circle():
    assert cycle_in(import_graph()) is None


def test_the_cycle_check_finds_a_circle():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None
