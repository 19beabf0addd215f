"""rnix-actors: LLM agents as supervised, immune-monitored processes on Pykka actors.

The public API is what this module exports; everything else is internal.
"""

import logging

from rnix_actors.drivers.base import Driver, LLMRequest, LLMResponse, Message, ToolCall, ToolSpec
from rnix_actors.errors import (
    ConfigError,
    DeviceError,
    DriverError,
    ErrorCode,
    NoSuchProcess,
    RnixError,
    SpawnError,
    StillRunning,
    SystemFailed,
    SystemStopped,
    Unresponsive,
    WouldDeadlock,
)
from rnix_actors.immune import Immune, ImmuneConfig, ImmuneStatus
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.kernel.process import ExitCode, ProcessInfo, ProcessState, Signal
from rnix_actors.kernel.safety import MAX_SPAWN_DEPTH
from rnix_actors.messages.events import Event
from rnix_actors.messages.guards import SyscallAttempt, Verdict
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.messages.migration import MigrationAnswer, MigrationOffer
from rnix_actors.state import KeepLogs
from rnix_actors.subscription import Subscription
from rnix_actors.supervision.handle import SupervisorHandle
from rnix_actors.supervision.spec import (
    INFINITY,
    PYTHON_WORKER_LIMITS,
    AutoShutdown,
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
)
from rnix_actors.supervision.views import ChildView, SupervisorView
from rnix_actors.system import System
from rnix_actors.templates import AgentTemplate, Limits, Skill

__version__ = "0.1.0"

# A library logs, the application decides where it goes (no output unless configured).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "INFINITY",
    "MAX_SPAWN_DEPTH",
    "PYTHON_WORKER_LIMITS",
    "AgentTemplate",
    "AutoShutdown",
    "Backoff",
    "ChildSpec",
    "ChildView",
    "ConfigError",
    "DeviceCall",
    "DeviceError",
    "Driver",
    "DriverError",
    "Effect",
    "ErrorCode",
    "Event",
    "ExitCode",
    "ExitKind",
    "ExitReason",
    "Immune",
    "ImmuneConfig",
    "ImmuneStatus",
    "KeepLogs",
    "LLMRequest",
    "LLMResponse",
    "Limits",
    "Message",
    "MigrationAnswer",
    "MigrationOffer",
    "NoSuchProcess",
    "ProcessInfo",
    "ProcessState",
    "Restart",
    "RnixError",
    "Signal",
    "Skill",
    "SpawnError",
    "StillRunning",
    "Strategy",
    "Subscription",
    "SupervisorHandle",
    "SupervisorSpec",
    "SupervisorView",
    "SyscallAttempt",
    "System",
    "SystemFailed",
    "SystemStopped",
    "ToolCall",
    "ToolSpec",
    "Unresponsive",
    "Verdict",
    "WouldDeadlock",
    "__version__",
]
