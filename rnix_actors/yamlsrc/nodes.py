"""YAML nodes as values: tags, positions, error wording and conversion to plain data.

Nodes come from `yaml.compose` (SafeLoader), so each still knows its line. Booleans follow YAML
1.2: only ``true``/``false`` are booleans; ``yes``/``no``/``on``/``off`` stay strings.
"""

from __future__ import annotations

from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rnix_actors.errors import ConfigError

TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = TAG + "str", TAG + "int", TAG + "float", TAG + "bool", TAG + "null"
SEQ, MAP = TAG + "seq", TAG + "map"
BOOL_WORDS = {"true": True, "false": False}


def where(file: str, node: Node | None) -> str:
    """``file:LINE`` for a node that has a position, else just ``file`` (Python-built nodes)."""
    mark = None if node is None else node.start_mark
    return file if mark is None else f"{file}:{mark.line + 1}"


def is_text(node: Node) -> bool:
    """A string scalar under YAML 1.2 rules (PyYAML tags ``yes``/``no``/``on``/``off`` as bool)."""
    if not isinstance(node, ScalarNode):
        return False
    return node.tag == STR or (node.tag == BOOL and node.value.lower() not in BOOL_WORDS)


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
    tag = "!!" + node.tag.removeprefix(TAG) if node.tag.startswith(TAG) else node.tag
    return f"{shown!r} tagged {tag}"


def join(prefix: str, key: str) -> str:
    """The dotted field ``prefix.key`` (just ``key`` at the top)."""
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
            key: to_plain(value, file, join(field, key), inner)
            for key, (_, value) in entries(node, file, field, str_keys=True).items()
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
        return BOOL_WORDS.get(text.lower(), text)
    if tag == INT:
        return SafeConstructor().construct_yaml_int(node)  # type: ignore[arg-type]
    if tag == FLOAT:
        return SafeConstructor().construct_yaml_float(node)  # type: ignore[arg-type]
    problem = f"unsupported value ({describe(node)})"
    raise ConfigError(where(file, node), field, problem, "quote it to make it a string")


def entries(
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
            raise ConfigError(where(file, key_node), join(prefix, key), "duplicate key", fix)
        entries[key] = (key_node, value_node)
    return entries
