"""The architecture's import rule, checked over the source (see docs/architecture.md, Layers).

Imports point down the layer table, never up; inside a layer, parts may use each other in one
direction only, and a few pairs never. Every import counts: at module level, inside a function
(a lazy import is still a dependency) and under ``TYPE_CHECKING``. A last check finds import
cycles between modules (imports at module level and under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rnix_actors"

# Top to bottom. A part is a subpackage or a top-level module of rnix_actors ("" is the
# package's own __init__, the public API). A part may import parts of any lower layer.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("cli", frozenset({"cli"})),
    ("ipc and dashboard", frozenset({"ipc", "dashboard"})),
    ("aio", frozenset({"aio"})),
    (
        "System",
        frozenset({"", "system", "app", "introspect", "durable", "catalog", "loader", "nodes"}),
    ),
    ("compose", frozenset({"compose"})),
    # ray: the Ray backend, a launcher of the kernel's that rebuilds the immune guard on hosts
    ("services", frozenset({"migration", "topology", "supervision", "immune", "mcp", "ray"})),
    ("kernel", frozenset({"kernel", "subscription"})),
    ("drivers", frozenset({"drivers"})),
    (
        "messages, store, config",
        frozenset(
            {
                "messages",
                "store",
                "config",
                "state",
                "templates",
                "errors",
                "paths",
                "privatefs",
                "redact",
                "shellconf",
                "yamlsrc",
                "cancel",
            }
        ),
    ),
)

# Inside a layer parts may use each other, in one direction only (the part graph has no
# cycle), except these pairs, which never import each other in either direction.
APART: frozenset[frozenset[str]] = frozenset(
    {
        frozenset({"immune", "migration"}),  # the immune daemon and the planner
        frozenset({"immune", "topology"}),
        frozenset({"ipc", "dashboard"}),
    }
)

# Known breaks of the rule, each with what fixing it takes. The list only shrinks: a test fails
# when an entry no longer happens, so that it is removed with the fix.
KNOWN: dict[tuple[str, str], str] = {
    ("system", "dashboard"): "System.serve_dashboard starts the web UI, which drives System: "
    "the facade should take a started-services hook instead of importing the UI",
}

RANK: dict[str, int] = {
    part: len(LAYERS) - index for index, (_, parts) in enumerate(LAYERS) for part in parts
}
LAYER_OF: dict[str, str] = {part: name for name, parts in LAYERS for part in parts}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    """``rnix_actors.kernel.agent`` → ``kernel``; ``rnix_actors`` → ``""``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def imports(path: Path, in_functions: bool = True) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every absolute import in ``path`` (``in_functions=False``:
    not those inside a function body)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
        if in_functions or not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            todo.extend(ast.iter_child_nodes(node))


def package_imports() -> Iterator[tuple[Path, int, str, str]]:
    """(file, line, imported module, imported part) for each import of rnix_actors."""
    for path in sources():
        for line, target in imports(path):
            if target == "rnix_actors" or target.startswith("rnix_actors."):
                yield path, line, target, part_of(target)


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "conf" not in p.relative_to(PACKAGE).parts)


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported`` (None: it may, as far as layers go)."""
    if importer == imported:
        return None
    for part in (importer, imported):
        if part not in RANK:
            return f"part {part!r} has no layer: add it to LAYERS in tests/test_import_rule.py"
    if frozenset({importer, imported}) in APART:
        return f"{importer!r} and {imported!r} never import each other"
    if RANK[imported] <= RANK[importer]:
        return None
    return (
        f"{importer!r} (layer {LAYER_OF[importer]!r}) may not import {imported!r} "
        f"(layer {LAYER_OF[imported]!r}, higher up): imports point down"
    )


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line}"


def test_every_part_has_a_layer() -> None:
    parts = {part_of(module_name(p)) for p in sources()}
    missing = sorted(p for p in parts if p not in RANK)
    assert not missing, f"parts of rnix_actors with no layer in LAYERS: {missing}"


def test_imports_point_down_the_layers() -> None:
    problems = []
    for path, line, target, part in package_imports():
        importer = part_of(module_name(path))
        why = violation(importer, part)
        if why is not None and (importer, part) not in KNOWN:
            problems.append(f"{where(path, line)}: import {target}: {why}")
    assert not problems, "the import rule is broken:\n" + "\n".join(problems)


def test_known_breaks_still_happen() -> None:
    happening = {(part_of(module_name(path)), part) for path, _, _, part in package_imports()}
    fixed = sorted(f"{a} → {b}" for a, b in KNOWN if (a, b) not in happening)
    assert not fixed, f"fixed, so remove from KNOWN in tests/test_import_rule.py: {fixed}"


def test_parts_of_one_layer_depend_one_way() -> None:
    graph: dict[str, set[str]] = {}
    seen: dict[tuple[str, str], str] = {}
    for path, line, target, part in package_imports():
        importer = part_of(module_name(path))
        if (importer, part) in KNOWN:
            continue
        if part != importer and RANK.get(part) == RANK.get(importer):
            graph.setdefault(importer, set()).add(part)
            seen.setdefault((importer, part), f"{where(path, line)}: import {target}")
    cycles = find_cycles(graph)
    lines = []
    for cycle in cycles:
        lines.append(" ↔ ".join(repr(p) for p in cycle) + ", by:")
        lines.extend(f"  {seen[a, b]}" for a in cycle for b in cycle if (a, b) in seen)
    assert not cycles, "parts of one layer import each other:\n" + "\n".join(lines)


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    known = {module_name(p) for p in sources()}
    for path in sources():
        name = module_name(path)
        targets = set()
        for _line, target in imports(path, in_functions=False):
            # ``from pkg import mod`` names a module too; keep the longest known prefix.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if (part_of(name), part_of(target)) in KNOWN:
                continue
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)
        graph[name] = targets
    cycles = find_cycles(graph)
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        " → ".join(cycle) for cycle in cycles
    )


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_refuses_an_upward_import() -> None:
    assert violation("kernel", "supervision") is not None
    assert violation("messages", "kernel") is not None
    assert violation("immune", "migration") is not None
    assert violation("migration", "immune") is not None
    assert violation("supervision", "kernel") is None
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
