"""The signalling half of `System`: signals to live processes, and resuming lost ones.

`kill`, `pause` and `resume` send a signal to a live process through the kernel; a process
that a previous system left lost or suspended continues from its last checkpoint
(`resume_from`, `restore`). `System` inherits it; these methods are its public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnix_actors.app.boot import Running
from rnix_actors.app.service import ServiceRef
from rnix_actors.catalog import Catalog
from rnix_actors.drivers.base import Driver
from rnix_actors.errors import NoSuchProcess
from rnix_actors.kernel.asking import ask
from rnix_actors.kernel.process import Signal
from rnix_actors.kernel.resumption import Restore, Restored, prepare_restore
from rnix_actors.messages.kernel import SendSignal

ASK_TIMEOUT = 30.0


class Signals:
    """Signalling processes (see the module docstring)."""

    _run: Running | None
    _catalog: Catalog
    _drivers: dict[str, Driver]

    if TYPE_CHECKING:  # provided by System

        def _require(self) -> ServiceRef: ...

    def kill(self, pid: int, signal: Signal | str = Signal.SIGTERM, origin: str = "user") -> str:
        """Send a signal; returns what the kernel did. Raises `NoSuchProcess`, `SystemStopped`
        and `Unresponsive` (as `spawn`)."""
        sig = signal if isinstance(signal, Signal) else Signal.parse(signal)
        return str(ask(self._require(), SendSignal(pid, sig, origin), ASK_TIMEOUT, "kernel"))

    def pause(self, pid: int, origin: str = "user") -> str:
        return self.kill(pid, Signal.SIGPAUSE, origin)

    def resume(self, pid: int, origin: str = "user", retry: bool = False) -> str:
        """SIGRESUME ``pid`` and its subtree. ``retry``: the call a guard refused when it
        suspended ``pid`` runs again (else the agent goes on with the refusal as its
        result). A lost process (its system died) resumes from its last checkpoint
        (`resume_from`)."""
        message = SendSignal(pid, Signal.SIGRESUME, origin, retry)
        try:
            return str(ask(self._require(), message, ASK_TIMEOUT, "kernel"))
        except NoSuchProcess:
            note = self.restore(pid, origin, retry).note
            return "resumed from its last checkpoint" + (f"; {note}" if note else "")

    def resume_from(self, pid: int, origin: str = "user", retry: bool = False) -> int:
        """Continue a lost or suspended process of a previous system from its last checkpoint,
        at depth 0, with its PID, UUID and devices (narrowed to its template's current ones).
        ``retry``: the call a guard refused when it suspended ``pid`` runs again (else the
        agent goes on with the refusal). Raises `CheckpointError` (no or bad checkpoint,
        naming the PID and what to do), `NoSuchProcess`, `SpawnError`; nothing starts unless
        every check passed."""
        return self.restore(pid, origin, retry).pid

    def restore(self, pid: int, origin: str = "user", retry: bool = False) -> Restored:
        """`resume_from`, answering what became of a refused call too (`Restored.note`)."""
        self._prepare_restore(pid)
        restored: Restored = ask(
            self._require(), Restore(pid, origin, retry), ASK_TIMEOUT, "kernel"
        )
        return restored

    def _prepare_restore(self, pid: int) -> None:
        """Parse the replay script of ``pid``'s agent in the caller's thread (as a spawn)."""
        run = self._run
        checkpoints = None if run is None else run.checkpoints
        prepare_restore(
            pid, checkpoints, self._catalog.templates.get, lambda n: self._drivers.get(n)
        )
