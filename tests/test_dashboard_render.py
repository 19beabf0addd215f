"""The dashboard's pure parts: layouts, the difference between two renders, run figures."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.dashboard.data import run_figures, tree_order
from rnix_actors.dashboard.html import Region, diff
from rnix_actors.dashboard.layout import layered, tidy_tree
from rnix_actors.kernel.process import ProcessInfo, ProcessState

names = st.sampled_from(list("abcdefgh"))
edge_lists = st.lists(st.tuples(names, names), max_size=25)


@given(edge_lists)
def test_layered_places_every_node_once_in_distinct_slots(edges: list[tuple[str, str]]) -> None:
    nodes = {n for e in edges for n in e}
    placed = layered(nodes, edges)
    assert set(placed) == nodes
    slots = [(p.layer, p.index) for p in placed.values()]
    assert len(set(slots)) == len(slots)


@given(st.lists(st.tuples(names, names).filter(lambda e: e[0] < e[1]), max_size=25))
def test_in_an_acyclic_graph_every_edge_points_down(edges: list[tuple[str, str]]) -> None:
    placed = layered({n for e in edges for n in e}, edges)
    assert all(placed[a].layer < placed[b].layer for a, b in edges)


def test_a_cycle_is_still_laid_out() -> None:
    placed = layered("abc", [("a", "b"), ("b", "c"), ("c", "a")])
    assert sorted(p.layer for p in placed.values()) == [0, 1, 2]


def test_tidy_tree_centres_parents_over_their_children() -> None:
    tree = {"r": ["x", "y"], "x": ["x1", "x2"], "y": [], "x1": [], "x2": []}
    placed = {n: (d, c) for n, d, c, _ in tidy_tree("r", lambda n: tree[n])}
    assert placed["x1"] == (2, 0) and placed["x2"] == (2, 1) and placed["y"] == (1, 2)
    assert placed["x"] == (1, 0.5) and placed["r"] == (0, 1.25)


def apply(old: list[tuple[str, str]], change: dict[str, object]) -> list[tuple[str, str]]:
    """What the page's script does with a keyed change."""
    parts = [(k, h) for k, h in old if k not in change.get("del", [])]  # type: ignore[operator]
    for key, html in dict(change.get("set", {})).items():  # type: ignore[call-overload]
        at = [k for k, _ in parts].index(key) if key in dict(parts) else None
        if at is None:
            parts.append((key, html))
        else:
            parts[at] = (key, html)
    order = change.get("order")
    if order:
        parts = sorted(parts, key=lambda p: list(order).index(p[0]))  # type: ignore[call-overload]
    return parts


keyed = st.lists(st.tuples(st.sampled_from(list("pqrstu")), st.sampled_from(["1", "2"])),
                 unique_by=lambda p: p[0])  # fmt: skip


@given(keyed, keyed)
def test_applying_the_diff_of_two_renders_gives_the_second(
    old: list[tuple[str, str]], new: list[tuple[str, str]]
) -> None:
    before = {"rows": Region("rows", parts=tuple(old))}
    after = {"rows": Region("rows", parts=tuple(new))}
    change = diff(before, after).get("rows", {})
    assert apply(old, change) == new
    if old == new:
        assert diff(before, after) == {}


def test_a_whole_region_is_sent_only_when_it_changed() -> None:
    assert diff({"a": Region("a", "x")}, {"a": Region("a", "x")}) == {}
    assert diff({"a": Region("a", "x")}, {"a": Region("a", "y")}) == {"a": {"html": "y"}}
    assert diff({}, {"a": Region("a", "x")}) == {"a": {"html": "x"}}


def info(pid: int, ppid: int) -> ProcessInfo:
    return ProcessInfo(pid, f"u{pid}", ppid, "t", "", ProcessState.RUNNING, 0, (), 0.0)


def test_tree_order_puts_children_under_parents() -> None:
    procs = [info(1, 0), info(2, 1), info(3, 0), info(4, 2), info(5, 99)]
    assert [(p.pid, level) for p, level in tree_order(procs)] == [
        (1, 0), (2, 1), (4, 2), (3, 0), (5, 0),
    ]  # fmt: skip


def test_run_figures_count_attempts_per_step_like_the_guard() -> None:
    events = [
        {"step": 1, "syscall": "ReasonStep", "tokens": 7, "duration_ms": 3.0},
        {"step": 1, "syscall": "Exec", "device": "/dev/shell"},
        {"step": 1, "syscall": "Read", "device": "/proc/12/status"},
        {"step": 1, "syscall": "Read", "device": "/dev/llm/replay"},
        {"step": 2, "syscall": "ReasonStep", "tokens": 9, "duration_ms": 5.0},
        {"step": 2, "syscall": "Exec", "device": "/dev/shell"},
        {"step": 2, "syscall": "Blocked", "device": "/dev/shell", "args": {"syscall": "Exec"}},
    ]
    figures = run_figures(7, events)
    assert figures.steps == 2
    assert figures.per_step["step.tokens"] == [7.0, 9.0]
    assert figures.per_step["step.count:Exec /dev/shell"] == [1.0, 2.0]
    assert figures.per_step["step.count:Read /proc"] == [1.0]
    assert figures.totals == {"Exec /dev/shell": 3.0, "Read /proc": 1.0}
    assert figures.shares == {"/dev/shell": 0.75, "/proc": 0.25}


def test_a_plot_marks_only_values_above_the_detector_limit() -> None:
    from rnix_actors.dashboard.svg_plots import PlotRow, range_plot
    from rnix_actors.immune.baseline import Stats

    stats = Stats(5, 1.0, 0.0, 1.0, 1.0)
    svg = range_plot("calls", [PlotRow("Exec /dev/shell", stats, 4.0, (1.0, 4.0, 5.0))])
    assert svg.count('class="run-in"') == 2 and svg.count('class="run-out"') == 1
    assert 'class="limit"' in svg and "limit 4" in svg and "learned 1–1 (n=5)" in svg
    far = range_plot("tokens", [PlotRow("tokens", stats, 2000.0, (1.0,))])
    assert 'class="limit"' not in far and "limit 2,000 →" in far
