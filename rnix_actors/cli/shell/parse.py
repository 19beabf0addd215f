"""Shell syntax, as pure functions: ``;`` separates commands, ``|`` separates pipeline
stages, words are split like a POSIX shell (quotes, backslashes), ``#`` starts a comment.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable, Iterator


class ShellSyntaxError(ValueError):
    """Unbalanced quotes, an empty pipeline stage and the like; the message says where."""


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote:
        raise ShellSyntaxError(f"unclosed {quote} quote in: {text.strip()}")
    parts.append("".join(current))
    return parts


def _unquoted(text: str) -> Iterator[tuple[int, str]]:
    """``(index, char)`` of each character outside quotes and not escaped."""
    quote = ""
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        else:
            yield index, char


def strip_comment(line: str) -> str:
    """The line without a ``#`` comment (a ``#`` inside quotes or a word is kept)."""
    for index, char in _unquoted(line):
        if char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def split_commands(line: str) -> list[str]:
    """The non-empty commands of a line separated by ``;``. Raises `ShellSyntaxError`."""
    return [
        part.strip() for part in _split_outside_quotes(strip_comment(line), ";") if part.strip()
    ]


def split_pipeline(command: str) -> list[str]:
    """The stages of ``a | b | c``. Raises `ShellSyntaxError` for an empty stage."""
    stages = [stage.strip() for stage in _split_outside_quotes(command, "|")]
    if len(stages) > 1 and not all(stages):
        raise ShellSyntaxError(f"empty pipeline stage in: {command}")
    return stages


def words(command: str) -> list[str]:
    """Split a command into words like a shell. Raises `ShellSyntaxError`."""
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise ShellSyntaxError(f"{exc} in: {command}") from None


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to a mistyped ``word`` (a prefix match first), or None."""
    options = sorted(set(choices))
    prefixed = [c for c in options if c.startswith(word)] if word else []
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def pipe_intent(previous_result: str, intent: str) -> str:
    """The intent of a pipeline stage after the first: the previous stage's result, framed."""
    return f"[PIPE_INPUT]\n{previous_result}\n[/PIPE_INPUT]\n\n{intent}"


def current_segment(text: str) -> str:
    """The part of a partly typed line after its last unquoted ``;`` or ``|`` (for
    completion: tolerant of an unclosed quote)."""
    start = 0
    for index, char in _unquoted(text):
        if char in ";|":
            start = index + 1
    return text[start:].lstrip()


def open_quote(text: str) -> bool:
    """True while ``text`` ends inside a quote: Enter then continues the line."""
    try:
        split_commands(text)
    except ShellSyntaxError as exc:
        return str(exc).startswith("unclosed")
    return False
