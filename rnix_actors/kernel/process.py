"""The process model, as the kernel's modules have always imported it.

The values live in `rnix_actors.messages.lifecycle` (below the kernel, so that messages, the
store and the CLI can use them without importing the kernel); this module re-exports them.
"""

from rnix_actors.messages.lifecycle import (
    LEGAL_TRANSITIONS,
    TERMINATING_SIGNALS,
    ExitCode,
    ExitStatus,
    ProcessInfo,
    ProcessState,
    Signal,
    check_transition,
)

__all__ = [
    "LEGAL_TRANSITIONS",
    "TERMINATING_SIGNALS",
    "ExitCode",
    "ExitStatus",
    "ProcessInfo",
    "ProcessState",
    "Signal",
    "check_transition",
]
