"""The shape docs/architecture.md draws, checked on the code's own imports.

Every import counts: module-level, inside functions and under TYPE_CHECKING, because a
cycle hidden in a function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "ansible_proxy"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    _module_name(p): p
    for p in sorted((SRC / ROOT).rglob("*.py"))
    if "migrations" not in p.parts  # Alembic loads these by path, never by import
}


def _resolve(name: str) -> str | None:
    """The module `name` lands in: itself, or the nearest package holding it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> Iterator[tuple[ast.stmt, str | None, bool]]:
    """(node, our module it imports or None for another library's, inside a function)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path)  # what a relative import is relative to
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.stmt, str | None, bool]]:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    ours = alias.name.split(".")[0] == ROOT
                    yield child, _resolve(alias.name) if ours else None, in_function
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.split(".")[0] != ROOT:
                    yield child, None, in_function
                    continue
                for alias in child.names:
                    yield child, _resolve(f"{base}.{alias.name}"), in_function
            yield from visit(child, inner)

    yield from visit(tree, False)


GRAPH = {
    name: {target for _, target, _ in _imports(path) if target and target != name}
    for name, path in MODULES.items()
}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            connect(name)
    return found


def test_the_graph_sees_the_whole_package() -> None:
    assert "ansible_proxy.agent.tick" in MODULES
    assert "ansible_proxy.agent.host" in GRAPH["ansible_proxy.agent.tick"]


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    assert _cycles() == []


def _edges(source: str, target: str) -> list[str]:
    return sorted(
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        if name.startswith(source)
        for dep in deps
        if dep.startswith(target)
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("ansible_proxy.agent", "ansible_proxy.cluster"),
        ("ansible_proxy.cluster", "ansible_proxy.agent"),
        ("ansible_proxy.client", "ansible_proxy.agent"),
        ("ansible_proxy.client", "ansible_proxy.cluster"),
        ("ansible_proxy.client", "ansible_proxy.server"),
        ("ansible_proxy.agent", "ansible_proxy.server"),
        ("ansible_proxy.cluster", "ansible_proxy.server"),
        ("ansible_proxy.server", "ansible_proxy.agent"),
        ("ansible_proxy.server", "ansible_proxy.cluster"),
        ("ansible_proxy.server", "ansible_proxy.client"),
    ],
)
def test_layers_stay_apart(source: str, target: str) -> None:
    """agent/ and cluster/ share client/ and never each other; the server is on its own."""
    assert _edges(source, target) == []


@pytest.mark.parametrize("module", ["ansible_proxy.errors", "ansible_proxy.names"])
def test_the_foundations_import_nothing_of_ours(module: str) -> None:
    assert GRAPH[module] == set()


def test_imports_inside_functions_say_why() -> None:
    """A function-level import is for start-up time; a comment next to it says what it saves."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        seen = set()
        for node, _target, in_function in _imports(path):
            if not in_function or node.lineno in seen:
                continue
            seen.add(node.lineno)
            # On the line, or just above its block of imports (which may share one comment).
            top = node.lineno - 1
            while top > 0 and lines[top - 1].strip().startswith(("from ", "import ")):
                top -= 1
            near = [line.strip() for line in lines[max(top - 3, 0) : node.lineno]]
            if not any(line.startswith("#") or "  # " in line for line in near):
                silent.append(f"{name}:{node.lineno}")
    assert silent == []
