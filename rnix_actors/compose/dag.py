"""The workflow DAG: cycle detection and scheduling decisions, as pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]`` (in declaration order), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, ()):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep in deps and dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in deps:
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def ready(
    deps: Mapping[str, Sequence[str]], done: Iterable[str], started: Iterable[str]
) -> list[str]:
    """Nodes not started whose dependencies are all done, in declaration order."""
    finished, begun = set(done), set(started)
    return [n for n, d in deps.items() if n not in begun and all(x in finished for x in d)]


def dependants(deps: Mapping[str, Sequence[str]], failed: str) -> list[str]:
    """Every node that (transitively) depends on ``failed``, in declaration order."""
    hit = {failed}
    changed = True
    while changed:
        changed = False
        for node, needs in deps.items():
            if node not in hit and any(d in hit for d in needs):
                hit.add(node)
                changed = True
    return [n for n in deps if n in hit and n != failed]


def layers(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Nodes grouped by the earliest round they can run in (for display); assumes no cycle."""
    result: list[list[str]] = []
    placed: set[str] = set()
    while len(placed) < len(deps):
        layer = [n for n in ready(deps, placed, placed)]
        if not layer:
            raise ValueError("the graph has a cycle")
        result.append(layer)
        placed.update(layer)
    return result
