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

The parts: `nodes` (tags, positions, plain values), `mapping` (`YamlMap`), `load` (bounded
parsing of files, text and Python data).
"""

from rnix_actors.yamlsrc.load import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    from_python,
    load_yaml,
    parse_yaml,
)
from rnix_actors.yamlsrc.mapping import YamlMap
from rnix_actors.yamlsrc.nodes import (
    BOOL,
    FLOAT,
    INT,
    MAP,
    NULL,
    SEQ,
    STR,
    describe,
    is_text,
    scalar_value,
    to_plain,
    where,
)

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "MAP",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "NULL",
    "SEQ",
    "STR",
    "YamlMap",
    "describe",
    "from_python",
    "is_text",
    "load_yaml",
    "parse_yaml",
    "scalar_value",
    "to_plain",
    "where",
]
