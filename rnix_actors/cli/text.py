"""Text that fits the terminal: wrapping at word boundaries, ellipses, tables.

Nothing is ever cut mid-word: a long value wraps onto the next line, and where a column must
stay on one line it ends with ``…``. ``--json`` never goes through here. Colour only on a
terminal, never with ``NO_COLOR``.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence

import attrs

DEFAULT_WIDTH = 100  # when the output is not a terminal and COLUMNS is unset


def terminal_width() -> int:
    """The width to render for: ``COLUMNS`` if set, else the terminal's, else 100."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


def colour_wanted() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def wrap(text: str, width: int | None = None, indent: str = "", hang: str | None = None) -> str:
    """``text`` wrapped at word boundaries to ``width``: the first line starts with ``indent``,
    the following ones with ``hang`` (``indent`` plus two spaces by default). A word longer
    than the line stays whole."""
    width = width or terminal_width()
    hang = indent + "  " if hang is None else hang
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.append(
            textwrap.fill(
                paragraph,
                width=max(width, len(indent) + 20),
                initial_indent=indent if not lines else hang,
                subsequent_indent=hang,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or indent
        )
    return "\n".join(lines)


def ellipsize(text: str, width: int) -> str:
    """``text`` on one line, cut at a word boundary with ``…`` when longer than ``width``."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: max(1, width - 1)]
    if " " in cut and not flat[len(cut)].isspace():
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


@attrs.frozen
class Column:
    """A table column. ``flex`` columns share the width left by the others: they wrap at word
    boundaries, or (``one_line``) end with ``…``; other columns are as wide as their widest
    cell and never shortened."""

    header: str
    justify: str = "left"  # "left" or "right"
    flex: bool = False
    one_line: bool = False
    drop: int = 0  # on a narrow terminal, columns with the highest ``drop`` go first (0: never)


GAP = "  "
FLEX_MIN = 16


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    wide: bool = False,
    width: int | None = None,
    colours: Sequence[str | None] | None = None,
) -> str:
    """An aligned table that fits ``width``: fixed columns keep their width, ``flex`` columns
    share the rest, wrapping at word boundaries (``one_line`` ones end in ``…`` instead).
    ``wide`` (``--no-trunc``) never shortens a cell: one-line columns wrap too, and a line may
    be longer than the terminal. ``colours`` gives a click colour name per row, used on a
    terminal only.

    Hand-written on purpose: the table libraries we tried cut cells mid-word ("runn…") when
    the terminal is narrow; here a word is never split.
    """
    width = width or terminal_width()
    if not wide:
        columns, rows = _fit_columns(columns, rows, width)
    natural = [
        max([len(col.header)] + [len(row[i]) for row in rows]) for i, col in enumerate(columns)
    ]
    widths = list(natural)
    flex = [i for i, col in enumerate(columns) if col.flex]
    if flex and not wide:
        room = width - sum(w for i, w in enumerate(natural) if i not in flex)
        room -= len(GAP) * (len(columns) - 1)
        floors = {i: _floor(columns[i], [row[i] for row in rows]) for i in flex}
        # Narrow the widest flex column, one character at a time, until the row fits or
        # every flex column is at its floor (a word is never split, a header never cut).
        while sum(widths[i] for i in flex) > room:
            shrinkable = [i for i in flex if widths[i] > floors[i]]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: widths[i])
            widths[widest] -= 1
    lines = [_row([c.header for c in columns], columns, widths, wide)]
    for index, row in enumerate(rows):
        text = _row(row, columns, widths, wide)
        colour = colours[index] if colours else None
        lines.append(_colour(text, colour) if colour else text)
    return "\n".join(lines)


def _floor(column: Column, cells: Sequence[str]) -> int:
    """How narrow a flex column may get: one-line columns down to ``x…``; wrapping columns
    down to their longest word."""
    if column.one_line:
        return max(len(column.header), 2)
    return max([len(column.header)] + [len(w) for cell in cells for w in cell.split()])


def _fit_columns(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[Column], list[list[str]]]:
    """Drop droppable columns (highest ``drop`` first) until fixed columns leave every flex
    column at least `FLEX_MIN` characters."""
    keep = list(range(len(columns)))

    def needed() -> int:
        total = len(GAP) * (len(keep) - 1)
        for i in keep:
            col = columns[i]
            natural = max([len(col.header)] + [len(row[i]) for row in rows])
            total += min(natural, FLEX_MIN) if col.flex else natural
        return total

    for victim in sorted(
        (i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop
    ):
        if needed() <= width:
            break
        keep.remove(victim)
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]


def _row(cells: Sequence[str], columns: Sequence[Column], widths: list[int], wide: bool) -> str:
    parts: list[list[str]] = []
    for cell, col, w in zip(cells, columns, widths, strict=True):
        if col.flex and col.one_line and not wide:
            parts.append([ellipsize(cell, w)])
        elif col.flex and len(cell) > w:
            parts.append(
                textwrap.wrap(cell, w, break_long_words=False, break_on_hyphens=False) or [""]
            )
        else:
            parts.append([cell])
    height = max(len(p) for p in parts)
    out = []
    for line in range(height):
        cells_out = []
        for part, col, w in zip(parts, columns, widths, strict=True):
            value = part[line] if line < len(part) else ""
            cells_out.append(value.rjust(w) if col.justify == "right" else value.ljust(w))
        out.append(GAP.join(cells_out).rstrip())
    return "\n".join(out)


def _colour(text: str, colour: str) -> str:
    if not colour_wanted():
        return text
    import click

    return click.style(text, fg=colour)
