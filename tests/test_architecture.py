"""The package's shape: no import cycle between tropicrop modules (imports inside functions included),
prediction without Lightning, no module far above 500 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tropicrop

PACKAGE = Path(tropicrop.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """tropicrop modules that ``path`` imports anywhere in its body (a package import counts as its __init__)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: imports_of(path, modules) - {name} for name, path in paths.items()}
    # a package's __init__ re-exporting its own submodules is not a cycle through the package
    return {name: {m for m in deps if not m.startswith(name + ".")} for name, deps in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_tropicrop_modules() -> None:
    graph = import_graph()
    assert "tropicrop.inference.run" in graph and "tropicrop.runfiles" in graph["tropicrop.inference.run"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_prediction_does_not_import_lightning() -> None:
    code = "import sys, tropicrop.inference, tropicrop.evaluation; assert 'lightning' not in sys.modules, 'lightning'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_module_is_far_above_500_lines() -> None:
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 520}
    assert not long, long
