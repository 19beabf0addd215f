"""Redaction of secrets wherever text leaves a process: events, logs, the store, errors, --json.

A secret is known when it is registered (`register`): the API keys of configured providers and
every environment variable whose name says it holds one (``*KEY*``, ``*TOKEN*``, ``*SECRET*``,
``*PASSWORD*``...). Not only the whole secret is replaced: **any run of 8 or more characters
of a known secret** is, because providers echo truncated keys in their errors (``Incorrect API
key provided: sk-proj-abc***…xyz``). Text of the usual secret shapes is replaced whether or not
the secret is known: ``Bearer <token>`` and ``sk-…`` keys.

The module-level `REDACTOR` is shared by the whole process; `redact` and `redact_value` use it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MIN_FRAGMENT = 8
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
_SHAPE = re.compile(r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}|(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{8,}")
_RUN = re.compile(r"\S{" + str(MIN_FRAGMENT) + ",}")


class Redactor:
    """Known secrets and the index that finds their fragments. Thread-safe: registering
    swaps in a new index; readers use whichever index they picked up."""

    def __init__(self) -> None:
        # Registrations come from the thread that (re)loads providers and from agent threads
        # (a provider error registers its key): each extends the set of the one before.
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._grams: dict[str, tuple[str, int]] = {}

    def register(self, secrets: Iterable[str]) -> None:
        """Add secrets (shorter than `MIN_FRAGMENT` characters are ignored: too common)."""
        fresh = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_FRAGMENT}
        with self._lock:
            if fresh <= self._secrets:
                return
            known = self._secrets | fresh
            grams: dict[str, tuple[str, int]] = {}
            for secret in sorted(known):
                for i in range(len(secret) - MIN_FRAGMENT + 1):
                    grams.setdefault(secret[i : i + MIN_FRAGMENT], (secret, i))
            self._grams, self._secrets = grams, frozenset(known)

    def text(self, text: str) -> str:
        """``text`` with every known-secret fragment and secret shape replaced."""
        if len(text) < MIN_FRAGMENT:
            return text
        shaped = "sk-" in text or "earer" in text or "EARER" in text  # cheap before the regex
        spans = [m.span() for m in _SHAPE.finditer(text)] if shaped else []
        grams = self._grams
        if grams:
            for run in _RUN.finditer(text):
                spans += _fragments(text, run.start(), run.end(), grams)
        if not spans:
            return text
        spans.sort()
        out, last = [], 0
        for start, end in spans:
            if end <= last:
                continue
            out += [text[last : max(start, last)], REDACTED]
            last = end
        out.append(text[last:])
        return "".join(out)

    def value(self, value: Any) -> Any:
        """Plain data (str, mappings, lists) with every string redacted: ``value`` itself when
        nothing needed it (the usual case, so callers may test with ``is``), else a copy."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            changed = {k: v2 for k, v in value.items() if (v2 := self.value(v)) is not v}
            return {**value, **changed} if changed else value
        if isinstance(value, list | tuple):
            items = [self.value(v) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return type(value)(items)
        return value


def _fragments(
    text: str, lo: int, hi: int, grams: Mapping[str, tuple[str, int]]
) -> list[tuple[int, int]]:
    """Spans of known-secret runs (>= `MIN_FRAGMENT` characters) in ``text[lo:hi]``."""
    found = []
    i = lo
    while i + MIN_FRAGMENT <= hi:
        hit = grams.get(text[i : i + MIN_FRAGMENT])
        if hit is None:
            i += 1
            continue
        secret, k = hit
        end, j = i + MIN_FRAGMENT, k + MIN_FRAGMENT
        while end < len(text) and j < len(secret) and text[end] == secret[j]:
            end, j = end + 1, j + 1
        found.append((i, end))
        i = end
    return found


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.text(text)


def redact_value(value: Any) -> Any:
    return REDACTOR.value(value)


def register_secrets(secrets: Iterable[str]) -> None:
    REDACTOR.register(secrets)


def register_environment(environ: Mapping[str, str], names: Iterable[str] = ()) -> None:
    """Register the values of ``names`` and of every variable whose name looks secret."""
    wanted = set(names)
    register_secrets(
        value for name, value in environ.items() if name in wanted or _SECRET_NAME.search(name)
    )


class RedactingFilter(logging.Filter):
    """Redacts a record's message (arguments merged in) and its exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_filter(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add `RedactingFilter` to ``handlers`` (default: the root logger's), once each."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
