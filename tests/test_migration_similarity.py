"""Similarity matrix, candidate ranking and the net-improvement gate: pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors import System
from rnix_actors.migration import (
    Blend,
    Plan,
    Record,
    jaccard,
    matrix_text,
    plan_migration,
    ranked_text,
    similarity_matrix,
    template_skills,
)
from rnix_actors.migration.gate import expected_original, expected_substitute

SKILLS = {
    "a": ("code-analysis", "testing", "debugging"),
    "b": ("code-analysis", "testing", "documentation"),
    "c": ("x",),
}


def test_jaccard_values_of_the_go_tests() -> None:
    assert jaccard({"analysis", "coding"}, {"analysis", "coding", "review"}) == pytest.approx(2 / 3)
    assert jaccard({"a"}, {"a"}) == 1.0
    assert jaccard({"a"}, {"b"}) == 0.0
    assert jaccard((), ()) == 0.0


def test_without_history_the_score_is_the_skill_overlap() -> None:
    matrix = similarity_matrix(SKILLS, {})
    assert matrix.get("a", "b") == pytest.approx(0.5)
    assert matrix.get("a", "a") == 1.0


def test_history_blends_in_with_the_configured_weights() -> None:
    history = {("a", "c"): 10}  # a-b never collaborated: history 0 for that pair
    assert similarity_matrix(SKILLS, history).get("a", "b") == pytest.approx(0.35)
    assert similarity_matrix(SKILLS, history).get("a", "c") == pytest.approx(0.3)
    even = Blend(0.5, 0.5)
    assert similarity_matrix(SKILLS, {("a", "b"): 4}, even).get("a", "b") == pytest.approx(0.75)
    with pytest.raises(ValueError, match="sum to 1"):
        Blend(0.7, 0.7)


def test_self_pairs_and_unknown_agents_do_not_count_as_history() -> None:
    matrix = similarity_matrix(SKILLS, {("a", "a"): 100, ("a", "zzz"): 100, ("a", "b"): 1})
    assert matrix.entry("a", "b").history == 1.0


@given(
    st.dictionaries(st.sampled_from("pqrst"), st.frozensets(st.sampled_from("uvwxyz")), min_size=1),
    st.dictionaries(
        st.tuples(st.sampled_from("pqrst"), st.sampled_from("pqrst")), st.integers(0, 50)
    ),
)
def test_the_matrix_is_symmetric_bounded_with_a_unit_diagonal(
    skills: dict[str, frozenset[str]], history: dict[tuple[str, str], int]
) -> None:
    matrix = similarity_matrix(skills, history)
    for a in skills:
        assert matrix.get(a, a) == 1.0
        for b in skills:
            assert matrix.get(a, b) == matrix.get(b, a)
            assert 0.0 <= matrix.get(a, b) <= 1.0


def test_shipped_templates_give_the_seed_matrix_on_review_pipeline_history(project: object) -> None:
    system = System(project)  # type: ignore[arg-type]
    skills = template_skills(system.templates)
    fresh = similarity_matrix(skills, {})
    assert fresh.get("code-analyst", "security-scanner") == pytest.approx(0.6)
    # code-analyst ↔ security-scanner is the busiest pair, as in the seed's topology
    history = {
        ("code-analyst", "security-scanner"): 9,
        ("code-analyst", "doc-writer"): 7,
        ("doc-writer", "security-scanner"): 6,
    }
    matrix = similarity_matrix(skills, history)
    assert round(matrix.get("code-analyst", "security-scanner"), 2) == 0.72
    assert round(matrix.get("code-analyst", "doc-writer"), 2) == 0.35
    assert round(matrix.get("security-scanner", "doc-writer"), 2) == 0.20
    table = matrix_text(matrix, ["code-analyst", "security-scanner", "doc-writer"])
    assert table.splitlines()[1].split() == ["code-analyst", "1.00", "0.72", "0.35"]
    assert "candidate" in ranked_text(matrix, "security-scanner", 0.5)


# -- ranking and the gate --------------------------------------------------------------------

MATRIX = similarity_matrix(
    {
        "sec": ("v", "d", "s", "x"),
        "ana": ("v", "d", "s", "c"),
        "twin": ("v", "d", "s", "c"),
        "doc": ("w",),
    },
    {},
)
ALL = frozenset({"/dev/fs", "/dev/shell"})


FAILED_THRICE = Record(0, 3)


def plan(records: dict[str, Record], task: Record = FAILED_THRICE) -> Plan:
    devices = ALL
    return plan_migration("sec", MATRIX, 0.5, records, task, lambda _: ALL, devices)


def test_the_substitute_must_beat_the_failing_agent() -> None:
    chosen = plan({"sec": Record(5, 0), "ana": Record(4, 0), "twin": Record(0, 8)})
    assert chosen.decision == "migrated"
    assert chosen.chosen is not None and chosen.chosen.agent == "ana"  # record breaks the tie
    assert [c.verdict for c in chosen.candidates] == ["chosen", "ranked lower"]
    assert "doc" not in {c.agent for c in chosen.candidates}  # below the threshold


def test_a_substitute_with_a_poor_record_is_declined_with_the_numbers() -> None:
    result = plan({"ana": Record(0, 10), "twin": Record(0, 10)}, task=Record(0, 1))
    assert result.decision == "declined"
    assert result.reason.startswith("no net improvement: best candidate ana")
    assert all(c.verdict == "no net improvement" for c in result.candidates)


def test_no_candidate_above_the_threshold() -> None:
    result = plan_migration("doc", MATRIX, 0.5, {}, Record(0, 3), lambda _: ALL, ALL)
    assert result.decision == "no_candidate"
    assert "no agent reaches similarity 0.50 with doc" in result.reason


def test_substitute_devices_are_the_intersection_never_more() -> None:
    result = plan_migration(
        "sec", MATRIX, 0.5, {}, Record(0, 3), lambda _: ALL, frozenset({"/dev/fs"})
    )
    assert result.chosen is not None and result.chosen.devices == ("/dev/fs",)
    none = plan_migration(
        "sec", MATRIX, 0.5, {}, Record(0, 3), lambda _: ALL, frozenset({"/dev/other"})
    )
    assert none.decision == "declined" and "shares a device" in none.reason


def test_expected_success_formulas() -> None:
    assert Record().rate == 0.5
    assert expected_substitute(0.72, Record()) == pytest.approx(0.36)
    # a good agent failing this task repeatedly loses its advantage
    assert expected_original(Record(20, 0), Record(0, 4)) < expected_original(
        Record(20, 0), Record()
    )
