"""`YamlMap`: a YAML mapping that reads typed fields strictly, naming file, line and field."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rnix_actors.errors import ConfigError
from rnix_actors.yamlsrc.nodes import (
    BOOL,
    BOOL_WORDS,
    FLOAT,
    INT,
    MAP,
    NULL,
    describe,
    entries,
    is_text,
    join,
    scalar_value,
    to_plain,
    where,
)


def _range_text(low: float | None, high: float | None, exclusive: bool) -> str:
    if low is not None and high is not None and not exclusive:
        return f"a number between {low:g} and {high:g}"
    bounds = [] if low is None else [f"{'>' if exclusive else '>='} {low:g}"]
    bounds += [] if high is None else [f"<= {high:g}"]
    return " and ".join(["a number", *bounds]).replace("number and", "number", 1)


class YamlMap:
    """A YAML mapping with its file name and dotted field prefix; reads typed fields strictly.

    Every ``get_*`` method returns the default when the key is absent and raises `ConfigError`
    (``file:LINE``, dotted field, problem, fix) when the value has the wrong type or range.
    An empty value (``key:``) counts as absent for mappings and lists and is an error for scalars.
    """

    __slots__ = ("_entries", "file", "node", "prefix")

    def __init__(self, node: MappingNode, file: str, prefix: str = "") -> None:
        self.node = node
        self.file = file
        self.prefix = prefix
        self._entries = entries(node, file, prefix)

    def keys(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def has(self, key: str) -> bool:
        return key in self._entries

    def value_node(self, key: str) -> Node | None:
        """The raw node of ``key``'s value (None when absent), for fields of several shapes."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def field(self, key: str) -> str:
        return join(self.prefix, key)

    def source(self, key: str | None = None) -> str:
        """``file:LINE`` of ``key``'s value, or of the mapping itself."""
        entry = self._entries.get(key) if key is not None else None
        return where(self.file, entry[1] if entry else self.node)

    def error(self, key: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(self.source(key), self.field(key), problem, fix)

    def check_keys(self, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        """Reject keys outside ``allowed`` (listing them) and report missing ``required`` ones."""
        allowed = list(allowed)
        for key, (key_node, _) in self._entries.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                fix = f"{hint}allowed keys: {', '.join(allowed)}"
                raise ConfigError(where(self.file, key_node), self.field(key), "unknown key", fix)
        for key in required:
            if key not in self._entries:
                raise self.error(key, "is required", f"add '{key}:' to this mapping")

    def _scalar(self, key: str, expected: str, fix: str = "") -> ScalarNode | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        node = entry[1]
        if not isinstance(node, ScalarNode) or node.tag == NULL:
            raise self.error(key, f"must be {expected} (got {describe(node)})", fix)
        return node

    def get_str(
        self,
        key: str,
        default: str = "",
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str:
        """A string field; ``pattern`` must match all of it (``hint`` says what is valid)."""
        if required and key not in self._entries:
            raise self.error(key, "is required", f"add '{key}:' to this mapping")
        node = self._scalar(key, "a string", "write text, quoted if needed")
        if node is None:
            return default
        if not is_text(node):
            raise self.error(key, f"must be a string (got {describe(node)})", "quote the value")
        value: str = node.value
        if required and not value:
            raise self.error(key, "must not be empty", hint)
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(key, f"{value!r} is not valid", hint)
        return value

    def get_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        """An integer field ``>= minimum``."""
        expected = f"an integer >= {minimum}"
        node = self._scalar(key, expected)
        if node is None:
            return default
        value = scalar_value(node, self.file, self.field(key)) if node.tag == INT else None
        if not isinstance(value, int) or value < minimum:
            fix = f"write a whole number such as {max(minimum, 0)}"
            raise self.error(key, f"must be {expected} (got {describe(node)})", fix)
        return value

    def get_float(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = 0.0,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float:
        """A finite number in ``[minimum, maximum]`` (``(minimum, maximum]`` if exclusive)."""
        expected = _range_text(minimum, maximum, exclusive_minimum)
        node = self._scalar(key, expected)
        if node is None:
            return default
        raw = scalar_value(node, self.file, self.field(key)) if node.tag in (INT, FLOAT) else None
        value = float(raw) if isinstance(raw, int | float) else math.nan
        low = -math.inf if minimum is None else minimum
        in_range = low < value if exclusive_minimum else low <= value
        high = math.inf if maximum is None else maximum
        if not math.isfinite(value) or not in_range or value > high:
            raise self.error(key, f"must be {expected} (got {describe(node)})", "write a number")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        """A real YAML boolean: ``true`` or ``false`` (not ``yes``/``on`` or quoted text)."""
        node = self._scalar(key, "true or false", "write true or false")
        if node is None:
            return default
        value = BOOL_WORDS.get(node.value.lower()) if node.tag == BOOL else None
        if value is None:
            fix = "write true or false, without quotes"
            raise self.error(key, f"must be true or false (got {describe(node)})", fix)
        return value

    def get_str_list(
        self, key: str, *, item: Callable[[str], str] | None = None, unique: bool = True
    ) -> tuple[str, ...]:
        """A list of strings; ``item`` may normalise each one (raising ValueError to reject it)."""
        items = self._list(key, "a list of strings")
        values: list[str] = []
        for index, node in enumerate(items):
            field = f"{self.field(key)}[{index}]"
            if not is_text(node):
                problem = f"must be a string (got {describe(node)})"
                raise ConfigError(where(self.file, node), field, problem, "quote the value")
            value: str = node.value
            if item is not None:
                try:
                    value = item(value)
                except ValueError as exc:
                    raise ConfigError(where(self.file, node), field, str(exc)) from None
            if unique and value in values:
                problem = f"{value!r} is listed twice"
                raise ConfigError(where(self.file, node), field, problem, "remove the duplicate")
            values.append(value)
        return tuple(values)

    def _collection(self, key: str) -> Node | None:
        """The value of ``key``, or None when absent or empty (``key:``)."""
        entry = self._entries.get(key)
        if entry is None or (isinstance(entry[1], ScalarNode) and entry[1].tag == NULL):
            return None
        return entry[1]

    def _list(self, key: str, expected: str) -> list[Node]:
        node = self._collection(key)
        if node is not None and not isinstance(node, SequenceNode):
            fix = "write one '- item' per line or [a, b]"
            raise self.error(key, f"must be {expected} (got {describe(node)})", fix)
        return [] if node is None else list(node.value)

    def get_map(self, key: str) -> YamlMap:
        """A nested mapping (empty when absent or empty)."""
        node = self._collection(key) or MappingNode(MAP, [], self.node.start_mark)
        if not isinstance(node, MappingNode):
            problem = f"must be a mapping (got {describe(node)})"
            raise self.error(key, problem, "write indented 'key: value' lines")
        return YamlMap(node, self.file, self.field(key))

    def get_map_list(self, key: str) -> list[YamlMap]:
        """A list whose items are mappings, each read with prefix ``key[i]``."""
        maps = []
        for index, node in enumerate(self._list(key, "a list of mappings")):
            field = f"{self.field(key)}[{index}]"
            if not isinstance(node, MappingNode):
                problem = f"must be a mapping (got {describe(node)})"
                raise ConfigError(where(self.file, node), field, problem, "write 'key: value'")
            maps.append(YamlMap(node, self.file, field))
        return maps

    def get_plain(self, key: str, default: Any = None) -> Any:
        """The value as plain Python data (see `to_plain`)."""
        entry = self._entries.get(key)
        if entry is None:
            return default
        return to_plain(entry[1], self.file, self.field(key))

    def origins(self) -> dict[str, str]:
        """Dotted field → ``file:LINE`` for every leaf value below this mapping."""
        found: dict[str, str] = {}
        _collect_origins(self.node, self.file, self.prefix, found, frozenset())
        return found


def _collect_origins(
    node: MappingNode, file: str, prefix: str, found: dict[str, str], path: frozenset[int]
) -> None:
    for key, (_, value) in entries(node, file, prefix).items():
        field = join(prefix, key)
        if isinstance(value, MappingNode) and id(value) not in path:
            _collect_origins(value, file, field, found, path | {id(node)})
        else:
            found[field] = where(file, value)
