"""Strict YAML reading that keeps line numbers (bad input names file and field).

Files are parsed with `yaml.compose` (SafeLoader), so every value is still a node that knows its
line. `YamlMap` wraps a mapping node and reads typed fields from it; every failure is a
`ConfigError` whose source is ``file:LINE`` and whose field is the dotted path
(``limits.max_steps``, ``responses[2].tool_calls[0].name``). Unknown keys are errors that list the
allowed ones, and duplicate keys are errors rather than "last one wins".

Booleans follow YAML 1.2: only ``true``/``false`` are booleans. ``yes``/``no``/``on``/``off`` stay
strings, so ``description: no`` means the text "no" and ``enabled: yes`` is an error instead of a
silent guess.

`from_python` builds the same node tree from a plain Python mapping, so templates defined in code
go through exactly the same checks as templates read from files (just without line numbers).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rnix_actors.errors import ConfigError

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
SEQ, MAP = _T + "seq", _T + "map"
_BOOL_WORDS = {"true": True, "false": False}

# Bounds on every YAML input (config, templates, skills, replay scripts, compose, supervisors,
# providers, mcp.yaml): a file is refused, with its line, before anything walks it.
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_NODES = 200_000  # nodes once aliases are expanded (a billion-laughs file: 10^9)
MAX_YAML_DEPTH = 64


def where(file: str, node: Node | None) -> str:
    """``file:LINE`` for a node that has a position, else just ``file`` (Python-built nodes)."""
    mark = None if node is None else node.start_mark
    return file if mark is None else f"{file}:{mark.line + 1}"


def is_text(node: Node) -> bool:
    """A string scalar under YAML 1.2 rules (PyYAML tags ``yes``/``no``/``on``/``off`` as bool)."""
    if not isinstance(node, ScalarNode):
        return False
    return node.tag == STR or (node.tag == BOOL and node.value.lower() not in _BOOL_WORDS)


def describe(node: Node) -> str:
    """How a value reads in an error message: ``string 'x'``, ``integer 5``, ``a list``..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    names = {INT: "integer", FLOAT: "number", BOOL: "boolean"}
    if node.tag == NULL:
        return "an empty value"
    if is_text(node):
        return f"string {shown!r}"
    if node.tag in names:
        return f"{names[node.tag]} {shown}"
    tag = "!!" + node.tag.removeprefix(_T) if node.tag.startswith(_T) else node.tag
    return f"{shown!r} tagged {tag}"


def load_yaml(path: Path) -> YamlMap:
    """Read and parse ``path``; an empty file is an empty mapping.

    Raises `ConfigError` naming the file (and line) when it cannot be read or parsed, or when
    the document is not a mapping.
    """
    file = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            problem = f"the file is {size} bytes, more than the {MAX_YAML_BYTES} bytes allowed"
            raise ConfigError(file, "", problem, "split it or shorten it")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found", "check the path") from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError(file, "", problem, "save the file as UTF-8") from None
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
        raise ConfigError(file, "", problem, "check that it is a readable file") from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> YamlMap:
    """Parse one YAML document whose top level must be a mapping (or empty).

    Refuses (`ConfigError` with file, line and field) text over `MAX_YAML_BYTES`, documents
    that alias expansion would grow past `MAX_YAML_NODES` nodes (anchor bombs) and nesting
    deeper than `MAX_YAML_DEPTH`, before any caller walks the document.
    """
    if len(text) > MAX_YAML_BYTES:
        problem = f"the text is {len(text)} characters, more than the {MAX_YAML_BYTES} allowed"
        raise ConfigError(file, "", problem, "split it or shorten it")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"invalid YAML: {exc.reason} (character #x{code:04x})"
        fix = "remove control characters or quote them with escapes"
        raise ConfigError(f"{file}:{line}", "", problem, fix) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc}", "fix the YAML syntax") from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level; absurd nesting must not crash us.
        raise ConfigError(file, "", "invalid YAML: nesting too deep", "flatten it") from None
    if root is None:
        root = MappingNode(MAP, [])
    _check_size(root, file)
    if not isinstance(root, MappingNode):
        problem = f"the document must be a mapping of keys to values (got {describe(root)})"
        raise ConfigError(where(file, root), "", problem, "write 'key: value' lines")
    return YamlMap(root, file)


def _check_size(root: Node, file: str) -> None:
    """Raise `ConfigError` if expanding aliases gives too many nodes or too deep a tree.

    Each distinct node is sized once (aliases share their anchor's node), so the check is
    linear in the file even when the expansion it measures is exponential.
    """
    sizes: dict[int, int] = {}

    def size(node: Node, field: str, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            problem = f"nesting deeper than {MAX_YAML_DEPTH} levels"
            shown = field if len(field) <= 80 else field[:77] + "..."
            raise ConfigError(where(file, node), shown, problem, "flatten the structure")
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in visiting:
            raise ConfigError(
                where(file, node), field, "recursive alias", "remove the '*alias' loop"
            )
        visiting.add(id(node))
        total = 1
        if isinstance(node, MappingNode):
            for key_node, value in node.value:
                name = key_node.value if isinstance(key_node, ScalarNode) else "?"
                total += 1 + size(value, _join(field, str(name)), depth + 1)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                total += size(item, f"{field}[{index}]", depth + 1)
                if total > MAX_YAML_NODES:
                    break
        if total > MAX_YAML_NODES:
            problem = f"aliases expand to more than {MAX_YAML_NODES} values (an anchor bomb?)"
            raise ConfigError(
                where(file, node), field, problem, "write the values out, fewer '*aliases'"
            )
        visiting.discard(id(node))
        sizes[id(node)] = total
        return total

    visiting: set[int] = set()
    size(root, "", 0)


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = f"invalid YAML: {exc.problem or 'syntax error'}"
    if exc.context:
        problem += f" ({exc.context})"
    if mark is None:
        return ConfigError(file, "", problem, "fix the YAML syntax")
    line, column = mark.line + 1, mark.column + 1
    fix = f"check indentation, quoting and colons near line {line}, column {column}"
    return ConfigError(f"{file}:{line}", "", problem, fix)


def from_python(data: Mapping[str, Any], source: str) -> YamlMap:
    """A `YamlMap` over a plain Python mapping, so code-defined input gets the same checks.

    Values may be str, int, float, bool, None, lists/tuples, mappings, path-like objects (as
    strings) and attrs instances (as mappings of their fields).
    """
    node = _to_node(data, source, "")
    if not isinstance(node, MappingNode):
        raise ConfigError(source, "", f"expected a mapping (got {type(data).__name__})")
    return YamlMap(node, source)


def _to_node(value: object, source: str, field: str) -> Node:
    if attrs.has(type(value)):
        value = attrs.asdict(value, recurse=False)  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        pairs = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(source, field, f"keys must be strings (got {key!r})")
            pairs.append((ScalarNode(STR, key), _to_node(item, source, _join(field, key))))
        return MappingNode(MAP, pairs)
    if isinstance(value, list | tuple):
        items = [_to_node(v, source, f"{field}[{i}]") for i, v in enumerate(value)]
        return SequenceNode(SEQ, items)
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return ScalarNode(BOOL, "true" if value else "false")
    if isinstance(value, int):
        return ScalarNode(INT, str(value))
    if isinstance(value, float):
        return ScalarNode(FLOAT, repr(value))
    if isinstance(value, str | os.PathLike):
        return ScalarNode(STR, os.fspath(value))
    if value is None:
        return ScalarNode(NULL, "null")
    problem = f"unsupported value of type {type(value).__name__}"
    raise ConfigError(source, field, problem, "use str, int, float, bool, a list or a mapping")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def to_plain(node: Node, file: str, field: str, _path: frozenset[int] = frozenset()) -> Any:
    """Turn a node into plain Python data (dict/list/str/int/float/bool/None), YAML 1.2 bools.

    Other tags (timestamps, binary, custom ``!tags``) and non-string keys are errors: plain data
    here ends up in JSON (tool inputs, event logs), where they have no faithful form.
    """
    if id(node) in _path:
        raise ConfigError(where(file, node), field, "recursive alias", "remove the '*alias' loop")
    inner = _path | {id(node)}
    if isinstance(node, MappingNode):
        return {
            key: to_plain(value, file, _join(field, key), inner)
            for key, (_, value) in _entries(node, file, field, str_keys=True).items()
        }
    if isinstance(node, SequenceNode):
        return [to_plain(v, file, f"{field}[{i}]", inner) for i, v in enumerate(node.value)]
    return scalar_value(node, file, field)


def scalar_value(node: Node, file: str, field: str) -> Any:
    """The Python value of a scalar node (see `to_plain` for the rules)."""
    tag, text = node.tag, node.value
    if tag == STR:
        return text
    if tag == NULL:
        return None
    if tag == BOOL:
        # YAML 1.1 words (yes/on/...) are resolved as bool by PyYAML; YAML 1.2 reads them as text.
        return _BOOL_WORDS.get(text.lower(), text)
    if tag == INT:
        return SafeConstructor().construct_yaml_int(node)  # type: ignore[arg-type]
    if tag == FLOAT:
        return SafeConstructor().construct_yaml_float(node)  # type: ignore[arg-type]
    problem = f"unsupported value ({describe(node)})"
    raise ConfigError(where(file, node), field, problem, "quote it to make it a string")


def _entries(
    node: MappingNode, file: str, prefix: str, *, str_keys: bool = False
) -> dict[str, tuple[Node, Node]]:
    """Key → (key node, value node); duplicate and non-scalar keys are errors."""
    entries: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode) or (str_keys and not is_text(key_node)):
            problem = f"keys must be plain names (got {describe(key_node)})"
            raise ConfigError(where(file, key_node), prefix, problem, "quote the key")
        key = key_node.value
        if key in entries:
            fix = f"it is already set at {where(file, entries[key][0])}; keep one"
            raise ConfigError(where(file, key_node), _join(prefix, key), "duplicate key", fix)
        entries[key] = (key_node, value_node)
    return entries


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
        self._entries = _entries(node, file, prefix)

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
        return _join(self.prefix, key)

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
        value = _BOOL_WORDS.get(node.value.lower()) if node.tag == BOOL else None
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
    for key, (_, value) in _entries(node, file, prefix).items():
        field = _join(prefix, key)
        if isinstance(value, MappingNode) and id(value) not in path:
            _collect_origins(value, file, field, found, path | {id(node)})
        else:
            found[field] = where(file, value)
