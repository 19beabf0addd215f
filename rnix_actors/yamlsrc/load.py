"""Bounded YAML parsing: files and text become a `YamlMap`, or a `ConfigError` with file and line.

Every YAML input is refused before anything walks it when it is too large, expands (through
aliases) to too many nodes, or nests too deep. `from_python` builds the same node tree from a
plain Python mapping, so input defined in code goes through the same checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rnix_actors.errors import ConfigError
from rnix_actors.yamlsrc.mapping import YamlMap
from rnix_actors.yamlsrc.nodes import BOOL, FLOAT, INT, MAP, NULL, SEQ, STR, describe, join, where

# Bounds on every YAML input (config, templates, skills, replay scripts, compose, supervisors,
# providers, mcp.yaml): a file is refused, with its line, before anything walks it.
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_NODES = 200_000  # nodes once aliases are expanded (a billion-laughs file: 10^9)
MAX_YAML_DEPTH = 64


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
                total += 1 + size(value, join(field, str(name)), depth + 1)
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
            pairs.append((ScalarNode(STR, key), _to_node(item, source, join(field, key))))
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
