"""The package's layers import only downward, and no module imports itself back in a circle.

Every import counts, including those inside functions (only `if TYPE_CHECKING:` blocks are
exempt): a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sopy_actors"

# Lower layers first; a module may import its own layer and those before it (DESIGN.md).
LAYERS = [
    ("sopy_actors.errors", "sopy_actors._lazy"),
    ("sopy_actors.core", "sopy_actors.testing"),
    ("sopy_actors.state",),
    ("sopy_actors.telemetry",),
    ("sopy_actors.recovery",),
    ("sopy_actors.runtime",),
    ("sopy_actors.agents",),
    ("sopy_actors.monitoring",),
    ("sopy_actors.workflows",),
    ("sopy_actors.sopy", "sopy_actors.bootstrap"),
    ("sopy_actors.cli",),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    exempt = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.dump(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            candidates = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate.startswith("sopy_actors") and candidate != name:
                targets.add(candidate)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def test_no_module_of_the_package_is_part_of_an_import_circle() -> None:
    graph = _graph()
    # A package's __init__ re-exports its modules; it is an edge target only when imported as
    # such, so circles through it are real circles too.
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []


def test_every_module_imports_only_its_layer_and_the_layers_below() -> None:
    graph = _graph()
    unplaced = [m for m in graph if m != "sopy_actors" and _layer(m) is None]
    assert unplaced == [], "place these modules in LAYERS"
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module != "sopy_actors"
        for target in sorted(targets)
        if target != "sopy_actors" and (_layer(target) or 0) > (_layer(module) or 0)
    ]
    assert upward == []
