"""A local emulator of RunComfy's Model API: the offline default backend and the target of the tests.

Every answer carries ``x-seqnb-emulator: <seqnb version>`` (``VERSION_HEADER``), so a client can
tell it from the real service. See ``app`` for its routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BODY_LIMIT": ".config",
    "PROBABILITIES": ".faults",
    "VERSION_HEADER": ".app",
    "Counters": ".state",
    "Emulator": ".app",
    "EmulatorConfig": ".config",
    "EmulatorServer": ".server",
    "EmulatorState": ".state",
    "Faults": ".faults",
    "ManualClock": ".clock",
    "QueueConfig": ".queue",
    "create_app": ".app",
    "embedded": ".server",
    "is_loopback": ".config",
    "serve": ".server",
}

if TYPE_CHECKING:
    from .app import VERSION_HEADER, Emulator, create_app
    from .clock import ManualClock
    from .config import BODY_LIMIT, EmulatorConfig, is_loopback
    from .faults import PROBABILITIES, Faults
    from .queue import QueueConfig
    from .server import EmulatorServer, embedded, serve
    from .state import Counters, EmulatorState

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BODY_LIMIT",
    "PROBABILITIES",
    "VERSION_HEADER",
    "Counters",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Faults",
    "ManualClock",
    "QueueConfig",
    "create_app",
    "embedded",
    "is_loopback",
    "serve",
]
