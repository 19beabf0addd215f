"""`Catalog`: the skills and agent templates a system knows, kept in step with their files.

Templates and skills come from the shipped ``conf/`` and the project's ``.rnix/``; a host adds
more in Python. `refresh` looks at the YAML files' sizes and modification times (a few
``stat`` calls) and reloads when one was added, removed or changed, so that a long-running
daemon picks up a template written after it started (`System.spawn` looks at once for a name
it does not know, and at most once a second otherwise). A changed ``providers.yaml`` is handed
to the ``on_providers`` hook (the system rebuilds its HTTP drivers). A reload that fails (a
broken file) raises `ConfigError` naming the file and keeps the previous catalog whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from rnix_actors.loader import load_skills, load_templates
from rnix_actors.templates import AgentTemplate, Skill

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int], ...]


@attrs.frozen
class Changes:
    """What a reload changed, by template name."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    providers: bool = False  # providers.yaml changed and was read again

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.providers)

    def text(self) -> str:
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
            if names
        ]
        if self.providers:
            parts.append("providers reloaded")
        return "; ".join(parts) or "nothing changed"


def stamp(dirs: Sequence[Path]) -> Stamp:
    """Path, size and mtime of every skill and template file under ``dirs``."""
    found = []
    for base in dirs:
        for kind in ("skills", "agents"):
            folder = base / kind
            try:
                entries = sorted(folder.glob("*.yaml"))
            except OSError:
                continue
            found += _stats(entries)
    return tuple(found)


def providers_stamp(dirs: Sequence[Path]) -> Stamp:
    """Path, size and mtime of the ``providers.yaml`` of each of ``dirs`` that has one."""
    return tuple(_stats([base / "providers.yaml" for base in dirs]))


def _stats(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    found = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((str(path), info.st_size, info.st_mtime_ns))
    return found


class Catalog:
    """Thread-safe: readers get immutable dicts; `refresh` and `add_*` replace them whole."""

    def __init__(
        self, dirs: Sequence[Path], on_providers: Callable[[], None] | None = None
    ) -> None:
        self._dirs = tuple(dirs)
        self._on_providers = on_providers
        self._providers = providers_stamp(self._dirs)
        # Writers only: every thread that spawns may refresh, host code adds templates; one
        # at a time, so no added template is lost to a reload and providers reload once.
        self._lock = threading.Lock()
        self._added_templates: dict[str, AgentTemplate] = {}
        self._added_skills: dict[str, Skill] = {}
        self._stamp = stamp(self._dirs)
        self._looked = time.monotonic()
        self.skills: dict[str, Skill] = load_skills(self._dirs)
        self.templates: dict[str, AgentTemplate] = load_templates(self._dirs, self.skills)

    def add_template(self, template: AgentTemplate) -> None:
        with self._lock:
            self._added_templates[template.name] = template
            self.templates = {**self.templates, template.name: template}

    def add_skill(self, skill: Skill) -> None:
        with self._lock:
            self._added_skills[skill.name] = skill
            self.skills = {**self.skills, skill.name: skill}

    def refresh(self, max_age: float = 0.0) -> Changes:
        """Reload if a file changed; returns what changed (empty when nothing did). With
        ``max_age``, skip the look when the last one is younger than that many seconds.
        Raises `ConfigError` for a broken file, leaving the catalog (and the providers) as
        they were."""
        if max_age and time.monotonic() - self._looked < max_age:
            return Changes()
        self._looked = time.monotonic()
        now, providers = stamp(self._dirs), providers_stamp(self._dirs)
        if now == self._stamp and providers == self._providers:
            return Changes()
        with self._lock:
            reread = providers != self._providers
            if reread and self._on_providers is not None:
                self._on_providers()  # raises ConfigError for a broken file: nothing changed
            self._providers = providers
            changes = Changes(providers=reread)
            if now != self._stamp:
                changes = attrs.evolve(self._reload(now), providers=reread)
        if changes:
            log.info("configuration reloaded: %s", changes.text())
        return changes

    def _reload(self, now: Stamp) -> Changes:
        """Read the skills and templates again (the lock is held)."""
        skills = {**load_skills(self._dirs), **self._added_skills}
        templates = {**load_templates(self._dirs, skills), **self._added_templates}
        old = self.templates
        changes = Changes(
            added=tuple(sorted(set(templates) - set(old))),
            changed=tuple(sorted(n for n in set(templates) & set(old) if templates[n] != old[n])),
            removed=tuple(sorted(set(old) - set(templates))),
        )
        self.skills, self.templates, self._stamp = skills, templates, now
        return changes
