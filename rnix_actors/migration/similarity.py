"""The capability similarity matrix between agent templates: pure functions.

``score = skill_weight · jaccard(skills) + history_weight · history``, where ``history`` is the
pair's collaboration count (spawn + pipe + msg, both directions) divided by the busiest pair's
count. With no collaboration recorded at all the history term is unknown rather than zero, so
the score is the skill overlap alone: a fresh install must not mark every pair 30% less
similar than its skills say (and so block every migration) only because nothing ran yet.
Migration edges never feed the history: a substitution is not a collaboration, and counting
it would make each migration raise the similarity that allowed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

HIGH_SUBSTITUTABILITY = 0.7


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """|A ∩ B| / |A ∪ B|; 0 when both are empty."""
    left, right = frozenset(a), frozenset(b)
    union = left | right
    return len(left & right) / len(union) if union else 0.0


def pair(a: str, b: str) -> tuple[str, str]:
    """The canonical (sorted) key of an unordered pair."""
    return (a, b) if a <= b else (b, a)


@attrs.frozen
class Blend:
    """How skill overlap and collaboration history mix; weights must sum to 1."""

    skill_weight: float = attrs.field(default=0.7, validator=attrs.validators.ge(0.0))
    history_weight: float = attrs.field(default=0.3, validator=attrs.validators.ge(0.0))

    def __attrs_post_init__(self) -> None:
        if abs(self.skill_weight + self.history_weight - 1.0) > 1e-9:
            raise ValueError(
                f"similarity blend weights must sum to 1 (got {self.skill_weight} + "
                f"{self.history_weight})"
            )


@attrs.frozen
class Similarity:
    """One entry of the matrix, with its two components (for display and ranking)."""

    a: str
    b: str
    score: float
    skill: float
    history: float

    def other(self, agent: str) -> str:
        return self.b if agent == self.a else self.a


@attrs.frozen
class SimilarityMatrix:
    """A symmetric matrix over ``agents``; the diagonal is 1.0."""

    agents: tuple[str, ...]
    entries: Mapping[tuple[str, str], Similarity]

    def get(self, a: str, b: str) -> float:
        """The score of a pair (1.0 for ``a == b``); raises `KeyError` for an unknown agent."""
        if a == b:
            if a not in self.agents:
                raise KeyError(a)
            return 1.0
        return self.entries[pair(a, b)].score

    def entry(self, a: str, b: str) -> Similarity:
        return self.entries[pair(a, b)]

    def similar(self, agent: str, min_score: float = 0.0) -> list[Similarity]:
        """Other agents with ``score >= min_score``, best first (ties by name)."""
        if agent not in self.agents:
            return []
        found = [
            self.entries[pair(agent, other)]
            for other in self.agents
            if other != agent and self.entries[pair(agent, other)].score >= min_score
        ]
        return sorted(found, key=lambda s: (-s.score, s.other(agent)))

    def pairs(self) -> list[Similarity]:
        """Every distinct pair, highest score first."""
        return sorted(self.entries.values(), key=lambda s: (-s.score, s.a, s.b))


def similarity_matrix(
    skills: Mapping[str, Iterable[str]],
    collaboration: Mapping[tuple[str, str], int],
    blend: Blend = Blend(),
) -> SimilarityMatrix:
    """Build the matrix of the agents in ``skills``.

    ``collaboration`` maps an unordered pair (`pair`) to its collaboration count; self-pairs
    and pairs of unknown agents are ignored (a template collaborating with itself says nothing
    about substitutability, and would deflate every other pair's history).
    """
    agents = tuple(sorted(skills))
    sets = {name: frozenset(skills[name]) for name in agents}
    counts = {
        pair(a, b): n
        for (a, b), n in collaboration.items()
        if a != b and a in sets and b in sets and n > 0
    }
    busiest = max(counts.values(), default=0)
    entries: dict[tuple[str, str], Similarity] = {}
    for i, a in enumerate(agents):
        for b in agents[i + 1 :]:
            skill = jaccard(sets[a], sets[b])
            if busiest:
                history = counts.get((a, b), 0) / busiest
                score = blend.skill_weight * skill + blend.history_weight * history
            else:
                history, score = 0.0, skill
            entries[(a, b)] = Similarity(a, b, round(score, 6), skill, history)
    return SimilarityMatrix(agents, entries)


def matrix_text(matrix: SimilarityMatrix, agents: Iterable[str] | None = None) -> str:
    """The seed document's N×N table (``1.00`` on the diagonal)."""
    names = list(matrix.agents if agents is None else agents)
    if not names:
        return "No agent templates."
    label = max(len(n) for n in names)
    widths = [max(len(n), 4) for n in names]
    header = " " * label + "".join(f"  {n:^{w}}" for n, w in zip(names, widths, strict=True))
    lines = [header.rstrip()]
    for row in names:
        cells = "".join(
            f"  {matrix.get(row, col):^{w}.2f}" for col, w in zip(names, widths, strict=True)
        )
        lines.append(f"{row:<{label}}{cells}".rstrip())
    return "\n".join(lines)


def ranked_text(matrix: SimilarityMatrix, agent: str, threshold: float) -> str:
    """One agent's substitutes, best first, with the components and the migration threshold."""
    lines = [f'Capability Similarity for "{agent}":', ""]
    if agent not in matrix.agents:
        known = ", ".join(matrix.agents) or "none"
        return "\n".join([*lines, f"Unknown agent. Known agents: {known}"])
    rows = matrix.similar(agent, 0.0)
    if not rows:
        return "\n".join([*lines, "No similar agents found."])
    lines.append(f"{'AGENT':<20} {'SIMILARITY':>10}  {'SKILL':>6}  {'HISTORY':>7}  MIGRATION")
    for row in rows:
        ok = "candidate" if row.score >= threshold else f"below {threshold:.2f}"
        lines.append(
            f"{row.other(agent):<20} {row.score:>10.2f}  {row.skill:>6.2f}  "
            f"{row.history:>7.2f}  {ok}"
        )
    return "\n".join(lines)
