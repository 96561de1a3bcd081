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
    "ManualClock": ".queue",
    "QueueConfig": ".queue",
    "create_app": ".app",
    "embedded": ".server",
    "is_loopback": ".._netaddr",
    "serve": ".server",
}

if TYPE_CHECKING:  # the same names as _EXPORTS (tests/test_public_api.py)
    from .._netaddr import is_loopback as is_loopback
    from .app import VERSION_HEADER as VERSION_HEADER
    from .app import Emulator as Emulator
    from .app import create_app as create_app
    from .config import BODY_LIMIT as BODY_LIMIT
    from .config import EmulatorConfig as EmulatorConfig
    from .faults import PROBABILITIES as PROBABILITIES
    from .faults import Faults as Faults
    from .queue import ManualClock as ManualClock
    from .queue import QueueConfig as QueueConfig
    from .server import EmulatorServer as EmulatorServer
    from .server import embedded as embedded
    from .server import serve as serve
    from .state import Counters as Counters
    from .state import EmulatorState as EmulatorState

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
