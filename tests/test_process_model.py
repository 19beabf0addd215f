"""The process state machine, signals and exit statuses."""

from __future__ import annotations

import itertools

import pytest

from rnix_actors.errors import IllegalTransition
from rnix_actors.kernel.process import (
    LEGAL_TRANSITIONS,
    ExitCode,
    ExitStatus,
    ProcessState,
    Signal,
    check_transition,
)

S = ProcessState
LEGAL = {
    (S.CREATED, S.RUNNING),
    (S.CREATED, S.ZOMBIE),
    (S.RUNNING, S.SUSPENDED),
    (S.RUNNING, S.ZOMBIE),
    (S.SUSPENDED, S.RUNNING),
    (S.SUSPENDED, S.DEAD),
    (S.ZOMBIE, S.DEAD),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)))
def test_only_the_design_transitions_are_legal(old: S, new: S) -> None:
    if (old, new) in LEGAL:
        check_transition(old, new, 1)
    else:
        with pytest.raises(IllegalTransition, match=f"PID 7: illegal state transition {old}"):
            check_transition(old, new, 7)


def test_dead_is_terminal() -> None:
    assert LEGAL_TRANSITIONS[S.DEAD] == frozenset()


@pytest.mark.parametrize("text", ["SIGTERM", "term", "Sigkill", "pause", " SIGRESUME "])
def test_signal_names_parse(text: str) -> None:
    assert Signal.parse(text).value.startswith("SIG")


def test_unknown_signal_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid signals: SIGTERM, SIGKILL"):
        Signal.parse("SIGHUP")


def test_exit_status_ok_only_for_code_zero() -> None:
    assert ExitStatus(ExitCode.COMPLETED, "completed").ok
    assert not ExitStatus(ExitCode.SUSPENDED, "budget_exhausted").ok
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3]
