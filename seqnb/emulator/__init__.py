"""A local emulator of RunComfy's Model API: the offline default backend and the target of the tests."""

from __future__ import annotations

from .app import Counters, EmulatorConfig, EmulatorState, create_app
from .faults import Faults
from .queue import QueueConfig
from .server import EmulatorServer, embedded, is_loopback, serve

__all__ = [
    "Counters",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Faults",
    "QueueConfig",
    "create_app",
    "embedded",
    "is_loopback",
    "serve",
]
