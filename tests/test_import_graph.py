"""No import circles in the product: preflight and its providers import each other in one direction.

The graph is read from the source with ast. Module-level imports must form no cycle at all: a cycle there
makes import order matter and half-initialised modules possible. Function-level (deferred) imports are
recorded as well: they keep start-up fast, and they may not close a circle either.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"preflight": ROOT / "preflight", "preflight_providers": ROOT / "providers"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(name: str, known: dict[str, Path]) -> str | None:
    """The product module an imported name lands in (a submodule, or the package holding the name)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level edges, function-level edges) between product modules. TYPE_CHECKING blocks are skipped."""
    known = _modules()
    top: dict[str, set[str]] = {m: set() for m in known}
    deferred: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, nested: bool, module: str = module, is_package: bool = is_package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                names: list[str] = []
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = _resolve(module, is_package, child)
                    names = [f"{base}.{a.name}" for a in child.names]
                for name in names:
                    hit = _targets(name, known)
                    if hit is not None and hit != module:
                        (deferred if inner else top)[module].add(hit)
                visit(child, inner)

        visit(tree, False)
    return top, deferred


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def test_the_graph_sees_the_imports_it_should() -> None:
    top, deferred = import_graph()
    assert "preflight.errors" in top["preflight.cli"]  # absolute, module level
    assert "preflight.pipeline" in deferred["preflight.cli"] | top["preflight.cli"]
    assert "preflight_providers.microsoft.auth" in top["preflight_providers.microsoft.run"]  # relative
    assert "preflight_providers.microsoft.inputs" in deferred["preflight_providers.microsoft.commands"]


def test_no_import_circle_among_module_level_imports() -> None:
    top, _ = import_graph()
    assert _cycle(top) is None, " -> ".join(_cycle(top) or [])


def test_no_import_circle_even_through_deferred_imports() -> None:
    """A deferred import keeps start-up fast; it is not a licence for two modules to need each other."""
    top, deferred = import_graph()
    both = {m: top[m] | deferred[m] for m in top}
    assert _cycle(both) is None, " -> ".join(_cycle(both) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
