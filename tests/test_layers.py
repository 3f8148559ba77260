"""The package's layers: imports point one way, and no module imports itself back.

Every import is read (function-level ones too) from the source with ``ast``, so a cycle
hidden behind an import inside a function fails here as well as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

TIER = "unit"


SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "grubench"

# lowest first: a module may import its own part and the parts of lower layers
LAYERS = [
    {"grubench", "grubench.options"},
    {"grubench.tasks", "grubench.models"},
    {"grubench.store"},
    {"grubench.training"},
    {"grubench.sweeps"},
    {"grubench.answers"},
    {"grubench.cli"},
    {"grubench.__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The grubench modules ``path`` imports: ``from a.b import c`` is ``a.b.c`` when that is
    a module, else ``a.b``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]  # fmt: skip
        else:
            continue
        found.update(name for name in names if name.split(".")[0] == "grubench")
    return found


def part(module: str) -> str:
    """The part of the package a module belongs to: ``grubench.sweeps.runner`` ->
    ``grubench.sweeps``."""
    return ".".join(module.split(".")[:2])


def layer(module: str) -> int:
    for index, parts in enumerate(LAYERS):
        if part(module) in parts or module in parts:
            return index
    raise AssertionError(f"{module} is in no layer: add its part to LAYERS")


def graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: imports(path, known) & known for name, path in modules().items()}


def test_every_module_is_in_a_layer():
    for name in modules():
        layer(name)


def test_imports_point_down_the_layers():
    upward = [f"{name} imports {target}" for name, targets in graph().items()
              for target in sorted(targets)
              if part(target) != part(name) and layer(target) >= layer(name)]  # fmt: skip
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The two checks above can fail: a made-up graph with a cycle and an import upward."""
    edges = {"grubench.models.a": {"grubench.models.b"}, "grubench.models.b": {"grubench.models.a"},
             "grubench.tasks.x": {"grubench.sweeps.runner"}}  # fmt: skip
    assert cycles(edges) == [["grubench.models.a", "grubench.models.b"]]
    assert layer("grubench.sweeps.runner") > layer("grubench.tasks.x")
    known = set(modules())
    assert "grubench.training.fit" in imports(PACKAGE / "cli" / "fit.py", known)
