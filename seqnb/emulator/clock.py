"""A clock that moves only when told: the emulator's queue and expiry run on it in tests, without sleeps."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """Monotonic seconds that advance only through ``advance()``; callable like ``time.monotonic``.

    ``EmulatorServer(clock=ManualClock())`` serves a queue whose jobs move on exactly when a test
    says so. Safe to advance from the test's thread while the emulator's thread reads it.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never back); returns the new time."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward: got {seconds} seconds")
        with self._lock:
            self._now += seconds
            return self._now

    def __repr__(self) -> str:
        return f"<ManualClock {self._now:.3f}>"
