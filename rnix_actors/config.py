"""Runtime configuration: shipped ``conf/config.yaml`` under ``.rnix/config.yaml``.

The shipped file holds every default; a project's ``.rnix/config.yaml`` (if it exists) is merged
over it key by key, so a project sets only what it changes. Each file is validated on its own,
so an error names the file (and line) that set the bad value. Unknown sections and keys are
errors that list the allowed ones.

The ``immune`` section is kept as raw data here and validated by the immune package;
`Config.origins` tells it which ``file:LINE`` set each value, so its errors can say so too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.paths import shipped_conf_dir
from rnix_actors.shellconf import ShellSettings, shell_settings_from_fields
from rnix_actors.state import KeepLogs
from rnix_actors.yamlsrc import YamlMap, load_yaml

SECTIONS = ("kernel", "immune", "topology", "shell", "fs", "ray")
KERNEL_KEYS = (
    "sigterm_grace",
    "shell_timeout",
    "event_log",
    "checkpoints",
    "event_log_keep",
    "allowed_workdirs",
    "max_processes",
    "spawn_rate",
    "spawn_failures",
    "spawn_window",
    "backend",
)
BACKENDS = ("local", "ray")
RAY_KEYS = ("address", "max_restarts", "lost_after", "namespace")
_COUNT_KEYS = ("max_processes", "spawn_rate", "spawn_failures")
KEEP_KEYS = ("max_mb", "max_days")
FS_KEYS = ("hardlinks",)
HARDLINK_MODES = ("outside", "refuse")
TOPOLOGY_KEYS = ("reinforcement_threshold", "skill_weight")
_positive = attrs.validators.gt(0.0)


@attrs.frozen
class KernelConfig:
    """Kernel settings.

    ``sigterm_grace``: seconds between SIGTERM and the forced SIGKILL; ``shell_timeout``: default
    seconds a ``/dev/shell`` command may run; ``event_log``: write per-process events.jsonl;
    ``checkpoints``: checkpoint every process at each step boundary (with a state dir; see
    docs/durability.md); ``event_log_keep``: how many logs of finished processes to keep
    (YAML ``max_mb``, ``max_days``; unbounded by default);
    ``allowed_workdirs``: dirs outside the project that a spawn may name as its work dir;
    ``max_processes``: live processes in the system; ``spawn_rate`` / ``spawn_failures``:
    agent spawns / failed agent spawns per process tree within ``spawn_window`` seconds
    (0 turns a bound off; see `rnix_actors.kernel.treebounds`); ``backend``: where agent
    processes run, ``local`` (threads of this process) or ``ray`` (hosts on a Ray cluster,
    docs/ray.md).
    """

    sigterm_grace: float = attrs.field(default=10.0, validator=_positive)
    shell_timeout: float = attrs.field(default=30.0, validator=_positive)
    event_log: bool = True
    checkpoints: bool = True
    event_log_keep: KeepLogs = attrs.field(factory=KeepLogs)
    allowed_workdirs: tuple[str, ...] = ()
    max_processes: int = 2000
    spawn_rate: int = 100
    spawn_failures: int = 12
    spawn_window: float = attrs.field(default=10.0, validator=_positive)
    backend: str = attrs.field(default="local", validator=attrs.validators.in_(BACKENDS))


@attrs.frozen
class RayConfig:
    """The ``ray`` section, read only with ``kernel.backend: ray`` (docs/ray.md).

    ``address``: the cluster to join (``auto``, ``ray://host:10001`` or ``host:6379``); empty
    starts a private Ray instance on this machine and stops it with the system.
    ``max_restarts``: how often Ray restarts a host actor that died (its processes exit
    ``node_lost`` all the same); ``lost_after``: seconds a host may stay unreachable before its
    processes are declared lost; ``namespace``: the Ray namespace of the hosts (empty: one
    of their own per system).
    """

    address: str = ""
    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    lost_after: float = attrs.field(default=30.0, validator=_positive)
    namespace: str = ""


@attrs.frozen
class FsConfig:
    """``/dev/fs`` settings. ``hardlinks``: ``outside`` refuses a multi-linked file unless all
    its links are in the work dir; ``refuse`` refuses every multi-linked file."""

    hardlinks: str = attrs.field(default="outside", validator=attrs.validators.in_(HARDLINK_MODES))


@attrs.frozen
class TopologyConfig:
    """Collaboration topology and similarity settings.

    ``reinforcement_threshold``: uses of every edge of a chain before it counts as a reinforced
    path; ``skill_weight``: the share of skill overlap (Jaccard) in template similarity, the
    rest being collaboration history.
    """

    reinforcement_threshold: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    skill_weight: float = attrs.field(
        default=0.7, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )


@attrs.frozen
class Config:
    """The merged configuration.

    ``sources`` are the files read, lowest priority first; ``origins`` maps each dotted field
    (``immune.min_samples``) to the ``file:LINE`` that set its final value.
    """

    kernel: KernelConfig = attrs.field(factory=KernelConfig)
    immune: Mapping[str, Any] = attrs.field(factory=dict)
    topology: TopologyConfig = attrs.field(factory=TopologyConfig)
    shell: ShellSettings = attrs.field(factory=ShellSettings)
    fs: FsConfig = attrs.field(factory=FsConfig)
    ray: RayConfig = attrs.field(factory=RayConfig)
    sources: tuple[str, ...] = ()
    origins: Mapping[str, str] = attrs.field(factory=dict)

    def origin(self, field: str) -> str:
        """Where ``field`` was set: ``file:LINE``, or the last source read when no file set it."""
        fallback = self.sources[-1] if self.sources else "<defaults>"
        return self.origins.get(field, fallback)


def load_config(project_file: Path | None = None) -> Config:
    """Load the shipped config and merge ``project_file`` over it when that file exists.

    Raises `ConfigError` naming the file, line, field and allowed values for bad YAML, unknown
    sections or keys, and out-of-range values.
    """
    files = [shipped_conf_dir() / "config.yaml"]
    if project_file is not None and project_file.exists():
        files.append(project_file)
    kernel: dict[str, Any] = {}
    topology: dict[str, Any] = {}
    immune: dict[str, Any] = {}
    origins: dict[str, str] = {}
    shell = ShellSettings()
    fs: dict[str, Any] = {}
    ray: dict[str, Any] = {}
    for path in files:
        layer = load_yaml(path)
        layer.check_keys(SECTIONS)
        kernel.update(_kernel_values(layer.get_map("kernel")))
        topology.update(_topology_values(layer.get_map("topology")))
        shell = shell.merged(shell_settings_from_fields(layer.get_map("shell")), add_read=False)
        fs.update(_fs_values(layer.get_map("fs")))
        ray.update(_ray_values(layer.get_map("ray")))
        layer.get_map("immune")  # rejects a non-mapping with a clear message
        immune = deep_merge(immune, layer.get_plain("immune") or {})
        origins.update(layer.origins())
    return Config(
        kernel=KernelConfig(**kernel),
        immune=immune,
        topology=TopologyConfig(**topology),
        shell=shell,
        fs=FsConfig(**fs),
        ray=RayConfig(**ray),
        sources=tuple(str(path) for path in files),
        origins=origins,
    )


def _kernel_values(fields: YamlMap) -> dict[str, Any]:
    """The kernel keys this file sets (absent keys are left to lower layers)."""
    fields.check_keys(KERNEL_KEYS)
    values: dict[str, Any] = {}
    for key in filter(fields.has, KERNEL_KEYS):
        if key == "backend":
            values[key] = _backend(fields)
        elif key in ("event_log", "checkpoints"):
            values[key] = fields.get_bool(key, True)
        elif key == "event_log_keep":
            values[key] = _keep_value(fields.get_map(key))
        elif key == "allowed_workdirs":
            values[key] = fields.get_str_list(key, item=_absolute_dir)
        elif key in _COUNT_KEYS:
            values[key] = fields.get_int(key, 0, minimum=0)
        else:
            values[key] = fields.get_float(key, 0.0, minimum=0.0, exclusive_minimum=True)
    return values


def _keep_value(fields: YamlMap) -> KeepLogs:
    fields.check_keys(KEEP_KEYS)
    mb = fields.get_float("max_mb", 0.0, exclusive_minimum=True) if fields.has("max_mb") else None
    days = (
        fields.get_float("max_days", 0.0, exclusive_minimum=True)
        if fields.has("max_days")
        else None
    )
    return KeepLogs(
        max_bytes=None if mb is None else int(mb * 1_000_000),
        max_age=None if days is None else days * 86_400.0,
    )


def _fs_values(fields: YamlMap) -> dict[str, Any]:
    fields.check_keys(FS_KEYS)
    if not fields.has("hardlinks"):
        return {}
    mode = fields.get_str("hardlinks")
    if mode not in HARDLINK_MODES:
        fix = f"write one of: {', '.join(HARDLINK_MODES)}"
        raise fields.error("hardlinks", f"unknown mode {mode!r}", fix)
    return {"hardlinks": mode}


def _backend(fields: YamlMap) -> str:
    backend = fields.get_str("backend")
    if backend not in BACKENDS:
        fix = "write local (threads of this process) or ray (a Ray cluster, pip install '.[ray]')"
        raise fields.error("backend", f"unknown backend {backend!r}", fix)
    return backend


def _ray_values(fields: YamlMap) -> dict[str, Any]:
    fields.check_keys(RAY_KEYS)
    values: dict[str, Any] = {}
    for key in ("address", "namespace"):
        if fields.has(key):
            values[key] = fields.get_str(key)
    if fields.has("max_restarts"):
        values["max_restarts"] = fields.get_int("max_restarts", 3, minimum=0)
    if fields.has("lost_after"):
        values["lost_after"] = fields.get_float("lost_after", 30.0, exclusive_minimum=True)
    return values


def _absolute_dir(path: str) -> str:
    if not path.startswith("/") or path.rstrip("/") == "":
        raise ValueError(f"must be an absolute path other than / (got {path!r})")
    return path


def _topology_values(fields: YamlMap) -> dict[str, Any]:
    fields.check_keys(TOPOLOGY_KEYS)
    values: dict[str, Any] = {}
    if fields.has("reinforcement_threshold"):
        values["reinforcement_threshold"] = fields.get_int("reinforcement_threshold", 5, minimum=1)
    if fields.has("skill_weight"):
        values["skill_weight"] = fields.get_float("skill_weight", 0.7, maximum=1.0)
    return values


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``; nested mappings merge, anything else replaces."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged
