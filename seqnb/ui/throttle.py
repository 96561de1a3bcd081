"""The UI's one throttle: an action run at most once per interval, however many pokes arrive meanwhile.

Widgets poke it per event (runs may end by the hundred a second); the action (send a snapshot,
rebuild a page) runs once, ``interval`` after the first poke since it last ran, on the loop that
was running when it was poked (the kernel's, in Jupyter). Pokes may come from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Throttle"]

Spawn = Callable[[Coroutine[Any, Any, None]], object]


class Throttle:
    """Coalesce pokes into one call of ``action`` per ``interval`` seconds, scheduled on the running loop.

    Without a running loop a poke schedules nothing and returns False (the caller decides: mark
    itself stale, or call ``flush`` when it wants), unless ``spawn`` is given: then the wait runs as
    a coroutine it starts (``Client.spawn``, the client's loop).
    """

    def __init__(self, interval: float, action: Callable[[], object], *, spawn: Spawn | None = None) -> None:
        self.interval = interval
        self.action = action
        self.spawn = spawn
        self._lock = threading.Lock()
        self._pending = False
        self._generation = 0
        """Bumped by every run and cancel: a timer from an older generation finds nothing to do."""

    @property
    def pending(self) -> bool:
        """True while a poke waits for its interval to pass."""
        return self._pending

    def poke(self) -> bool:
        """Ask for the action within ``interval``; True if it is due (now or already), False if nothing is scheduled."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None and self.spawn is None:
            return False
        with self._lock:
            if self._pending:
                return True
            self._pending = True
            generation = self._generation
        if loop is not None:
            loop.call_later(self.interval, self._due, generation)
        else:
            assert self.spawn is not None
            self.spawn(self._due_later(generation))
        return True

    async def _due_later(self, generation: int) -> None:
        await asyncio.sleep(self.interval)
        self._due(generation)

    def _due(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._pending:
                return
            self._pending = False
            self._generation += 1
        self.action()

    def flush(self) -> None:
        """Run the action now; a pending poke is served by this run (its timer will find nothing to do)."""
        self.cancel()
        self.action()

    def cancel(self) -> None:
        """Drop a pending poke: its action does not run (a later poke schedules anew)."""
        with self._lock:
            self._pending = False
            self._generation += 1
