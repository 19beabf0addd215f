"""The supervisor's functional core: strategies, intensity, backoff, and random crash runs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnix_actors.errors import ConfigError
from rnix_actors.supervision.core import (
    Finished,
    GiveUp,
    StartChild,
    StopChild,
    SupervisorCore,
)
from rnix_actors.supervision.spec import (
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
    validate,
)
from rnix_actors.supervision.strategy import (
    RestartIntensity,
    backoff_delay,
    plan_restart,
    should_restart,
)

P, T, TMP = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY
ORDER = ["a", "b", "c", "d"]


def types(**overrides: Restart) -> dict[str, Restart]:
    return {name: overrides.get(name, P) for name in ORDER}


@pytest.mark.parametrize(
    ("strategy", "stop", "start"),
    [
        (Strategy.ONE_FOR_ONE, (), ("b",)),
        (Strategy.ONE_FOR_ALL, ("d", "c", "a"), ("a", "b", "c", "d")),
        (Strategy.REST_FOR_ONE, ("d", "c"), ("b", "c", "d")),
        (Strategy.SIMPLE_ONE_FOR_ONE, (), ("b",)),
    ],
)
def test_each_strategy_stops_in_reverse_and_starts_in_order(
    strategy: Strategy, stop: tuple[str, ...], start: tuple[str, ...]
) -> None:
    plan = plan_restart(strategy, ORDER, {"a", "c", "d"}, "b", types())
    assert (plan.stop, plan.start, plan.remove) == (stop, start, ())


def test_temporary_siblings_are_stopped_but_never_restarted() -> None:
    plan = plan_restart(Strategy.ONE_FOR_ALL, ORDER, {"a", "c", "d"}, "b", types(c=TMP))
    assert plan.stop == ("d", "c", "a")
    assert plan.start == ("a", "b", "d")
    assert plan.remove == ("c",)


def test_siblings_that_are_not_running_are_not_stopped() -> None:
    plan = plan_restart(Strategy.REST_FOR_ONE, ORDER, {"a"}, "b", types())
    assert plan.stop == () and plan.start == ("b", "c", "d")


@pytest.mark.parametrize(
    ("restart", "abnormal", "expected"),
    [
        (P, False, True),
        (P, True, True),
        (T, False, False),
        (T, True, True),
        (TMP, False, False),
        (TMP, True, False),
    ],
)
def test_restart_types(restart: Restart, abnormal: bool, expected: bool) -> None:
    assert should_restart(restart, abnormal) is expected


def test_intensity_allows_max_restarts_within_any_window() -> None:
    intensity = RestartIntensity(3, 10.0)
    assert [intensity.allow(t) for t in (0, 1, 2)] == [True, True, True]
    assert intensity.allow(9.9) is False  # a 4th inside the window
    assert intensity.allow(10.5) is True  # the restart at t=0 left the window


def test_zero_max_restarts_never_restarts() -> None:
    assert RestartIntensity(0, 60).allow(0.0) is False


def test_backoff_doubles_caps_and_jitters_within_bounds() -> None:
    policy = Backoff(min=1.0, max=8.0, jitter=0.0)
    rng = random.Random(1)
    assert [backoff_delay(policy, n, rng) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    jittered = Backoff(min=1.0, max=8.0, jitter=0.5)
    assert all(1.0 <= backoff_delay(jittered, 2, rng) <= 3.0 for _ in range(200))
    assert backoff_delay(None, 3, rng) == 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    max_restarts: int = 3,
    backoff: Backoff | None = None,
    restart: Restart | None = P,
) -> SupervisorSpec:
    children = tuple(ChildSpec(n, agent="x", restart=restart) for n in ("a", "b", "c"))
    return SupervisorSpec("sup", strategy, children, max_restarts, 60.0, backoff)


def test_stale_exits_change_nothing() -> None:
    core = SupervisorCore(spec(), Clock())
    incarnations = {
        a.name: core.started(a.name, 10)
        for a in core.initial_actions()
        if isinstance(a, StartChild)
    }
    assert core.exited("a", incarnations["a"], True, "boom") == [StartChild("a")]
    new = core.started("a", 11)
    assert core.exited("a", incarnations["a"], True, "old incarnation again") == []
    core.stopping("b")
    assert core.exited("b", incarnations["b"], True, "stopped by us") == []
    assert core.children["a"].old_pids == [10] and core.children["a"].pid == 11
    assert core.children["a"].incarnation == new == 2


def test_transient_normal_exits_finish_the_supervisor() -> None:
    core = SupervisorCore(spec(restart=T), Clock())
    for action in core.initial_actions():
        assert isinstance(action, StartChild)
        core.started(action.name, 1)
    assert core.exited("a", 1, False, "completed") == []
    assert core.exited("b", 1, False, "completed") == []
    assert core.exited("c", 1, False, "completed") == [Finished("all children completed")]


def test_the_failure_past_the_intensity_gives_up() -> None:
    clock = Clock()
    core = SupervisorCore(spec(max_restarts=2), clock)
    for action in core.initial_actions():
        core.started(action.name, 1)  # type: ignore[union-attr]
    inc = 1
    for _ in range(2):
        clock.now += 1
        assert core.exited("a", inc, True, "boom") == [StartChild("a")]
        inc = core.started("a", 2)
    assert core.exited("a", inc, True, "boom") == [GiveUp("a", "boom")]
    assert core.status == "giving_up"


def test_backoff_delays_restarts_and_resets_after_a_long_run() -> None:
    clock = Clock()
    core = SupervisorCore(spec(max_restarts=10, backoff=Backoff(1.0, 4.0, 0.0, 30.0)), clock)
    for action in core.initial_actions():
        core.started(action.name, 1)  # type: ignore[union-attr]
    delays = []
    inc = 1
    for _ in range(4):
        clock.now += 0.5
        (action,) = core.exited("a", inc, True, "outage")
        assert isinstance(action, StartChild)
        delays.append(action.delay)
        inc = core.started("a", 2)
    assert delays == [1.0, 2.0, 4.0, 4.0]
    clock.now += 31  # ran long enough: the next failure starts from min again
    (action,) = core.exited("a", inc, True, "outage")
    assert isinstance(action, StartChild) and action.delay == 1.0


def test_one_for_all_stops_the_others_and_restarts_everyone() -> None:
    core = SupervisorCore(spec(Strategy.ONE_FOR_ALL), Clock())
    for action in core.initial_actions():
        core.started(action.name, 1)  # type: ignore[union-attr]
    actions = core.exited("b", 1, True, "boom")
    assert actions == [
        StopChild("c"),
        StopChild("a"),
        StartChild("a"),
        StartChild("b"),
        StartChild("c"),
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(list(Strategy)[:3]),
    st.integers(min_value=0, max_value=4),
    st.lists(st.tuples(st.sampled_from("abc"), st.booleans(), st.floats(0, 30)), max_size=40),
)
def test_random_crash_sequences_respect_intensity_and_identity(
    strategy: Strategy, max_restarts: int, crashes: list[tuple[str, bool, float]]
) -> None:
    clock = Clock()
    core = SupervisorCore(spec(strategy, max_restarts), clock)
    live: dict[str, int] = {}  # name -> live incarnation (what the actor would run)
    restart_times: list[float] = []

    def run(actions: list[object]) -> bool:
        for action in actions:
            if isinstance(action, StopChild):
                assert action.name in live, "stopping a child that is not running"
                del live[action.name]
            elif isinstance(action, StartChild):
                assert action.name not in live, "a child would run twice"
                live[action.name] = core.started(action.name, 1)
            elif isinstance(action, GiveUp | Finished):
                return False
        return True

    assert run(list(core.initial_actions()))
    for name, abnormal, dt in crashes:
        clock.now += dt
        if name not in live:
            continue
        incarnation = live.pop(name)
        actions = core.exited(name, incarnation, abnormal, "crash")
        if any(isinstance(a, StartChild) and a.name == name for a in actions):
            restart_times.append(clock.now)
        if not run(actions):
            break
        # Every child the supervisor did not give up on is running: none lost, none doubled.
        assert set(live) == set(core.order)
    for i, t in enumerate(restart_times):
        in_window = [u for u in restart_times[: i + 1] if u > t - 60.0]
        assert len(in_window) <= max_restarts


def test_validation_names_the_field() -> None:
    def known(name: str) -> bool:
        return name == "x"

    bad = SupervisorSpec(
        "sup", Strategy.ONE_FOR_ONE, (ChildSpec("a", agent="x"), ChildSpec("a", agent="x"))
    )
    with pytest.raises(ConfigError, match=r"supervisor.children\[1\].name.*duplicate"):
        validate(bad, known)
    with pytest.raises(ConfigError, match=r"supervisor.max_restarts.*>= 0"):
        validate(
            SupervisorSpec("sup", children=(ChildSpec("a", agent="x"),), max_restarts=-1), known
        )
    with pytest.raises(ConfigError, match=r"supervisor.strategy.*unknown strategy 'best'"):
        validate(SupervisorSpec("sup", "best", (ChildSpec("a", agent="x"),)), known)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"children\[0\].agent.*unknown agent 'ghost'"):
        validate(SupervisorSpec("sup", children=(ChildSpec("a", agent="ghost"),)), known)
    nested = SupervisorSpec(
        "top",
        children=(
            ChildSpec(
                "team",
                supervisor=SupervisorSpec(
                    "team", children=(ChildSpec("w", agent="x", shutdown=-1),)
                ),
            ),
        ),
    )
    with pytest.raises(ConfigError, match=r"children\[0\].supervisor.children\[0\].shutdown"):
        validate(nested, known)
