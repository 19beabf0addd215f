"""Settings of the ``/dev/shell`` sandbox: the ``shell:`` section of config.yaml and of templates.

    shell:
      sandbox:                  # 'off' runs commands unsandboxed (logged); a mapping configures it
        read: [/usr, /etc/ssl]  # host paths visible read-only inside the sandbox
      network: false            # true gives commands the host's network

The config holds the defaults; a template's ``shell:`` may turn the network on, turn the sandbox
off or add read-only paths for its own processes. Each layer says only what it changes, so an
unset field is ``None`` here and `merged` resolves the layers.
"""

from __future__ import annotations

import attrs
from yaml.nodes import ScalarNode

from rnix_actors.yamlsrc import YamlMap

SHELL_KEYS = ("sandbox", "network")
# What a sandboxed command sees of the host by default: the system's programs and libraries and
# the few files of /etc they read. Homes, keys, /root, /var, /run and the rest stay absent.
DEFAULT_READ = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
)
SANDBOX_KEYS = ("read",)
_SWITCH = {"on": True, "true": True, "off": False, "false": False}


@attrs.frozen
class ShellSettings:
    """One layer of shell settings; ``None`` leaves a field to the layer below.

    ``sandbox``: run commands in the sandbox (False only when a file says ``sandbox: off``);
    ``network``: let commands reach the network; ``read``: host paths mounted read-only.
    """

    sandbox: bool | None = None
    network: bool | None = None
    read: tuple[str, ...] | None = None

    def merged(self, over: ShellSettings | None, *, add_read: bool = True) -> ShellSettings:
        """``over`` on top of this layer; ``read`` paths of both layers add up (a template's
        add to the config's) unless ``add_read`` is False (a project config replaces the list)."""
        if over is None:
            return self
        read = self.read
        if over.read is not None:
            read = tuple(dict.fromkeys((*(self.read or ()), *over.read))) if add_read else over.read
        return ShellSettings(
            sandbox=self.sandbox if over.sandbox is None else over.sandbox,
            network=self.network if over.network is None else over.network,
            read=read,
        )


def shell_settings_from_fields(fields: YamlMap) -> ShellSettings:
    """Read a ``shell:`` mapping; raises `ConfigError` naming the file, line and field."""
    fields.check_keys(SHELL_KEYS)
    network = fields.get_bool("network", False) if fields.has("network") else None
    sandbox: bool | None = None
    read: tuple[str, ...] | None = None
    if fields.has("sandbox"):
        node = fields.value_node("sandbox")
        if isinstance(node, ScalarNode):
            sandbox = _SWITCH.get(str(node.value).lower())
            if sandbox is None:
                raise fields.error(
                    "sandbox", f"must be on, off or a mapping (got {node.value!r})", "write off"
                )
        else:
            sandbox = True
            inner = fields.get_map("sandbox")
            inner.check_keys(SANDBOX_KEYS)
            if inner.has("read"):
                read = inner.get_str_list("read", item=_absolute)
    return ShellSettings(sandbox=sandbox, network=network, read=read)


def _absolute(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"must be an absolute path (got {path!r}); write it from the root, /...")
    if any(part == ".." for part in path.split("/")):
        raise ValueError(f"must not contain '..' (got {path!r})")
    return path.rstrip("/") or "/"
