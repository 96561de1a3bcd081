"""Where async work runs when called from synchronous code.

In Jupyter (or any code with a loop running in this thread) work goes onto that loop, so cells
return at once and widgets are updated on the kernel's loop. Elsewhere a shared daemon thread
runs a loop (the portal). Blocking on a result from inside the running loop needs a re-entrant
loop: nest-asyncio is applied then, lazily, and never at import.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .errors import WaitTimeout

T = TypeVar("T")

__all__ = ["LoopRunner", "run_detached"]

_portal_loop: asyncio.AbstractEventLoop | None = None
_portal_lock = threading.Lock()


def _portal() -> asyncio.AbstractEventLoop:
    global _portal_loop
    with _portal_lock:
        if _portal_loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="seqnb-loop", daemon=True).start()
            ready.wait()
            _portal_loop = loop
            atexit.register(_stop_portal, loop)
        return _portal_loop


def _stop_portal(loop: asyncio.AbstractEventLoop) -> None:
    """At exit, cancel the portal's tasks (pollers, downloads) and stop it, so none is destroyed while pending.

    The runs themselves go on at the service; the ledger still says they are in flight, and
    ``Client.resume()`` in the next session watches them again.
    """
    if loop.is_closed() or not loop.is_running():
        return

    async def cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    with contextlib.suppress(Exception):  # a stuck task: the interpreter is going away anyway
        asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(2.0)
    loop.call_soon_threadsafe(loop.stop)


_GRACE = 5.0
"""Seconds past a sync call's timeout before the calling thread gives up on a busy loop."""


def _timeout(what: str, timeout: float | None) -> WaitTimeout:
    return WaitTimeout(
        f"{what} did not finish within {timeout} s: seqnb stopped waiting; runs go on (wait again, or cancel them)"
    )


async def _bounded(coro: Coroutine[Any, Any, T], timeout: float | None, what: str) -> T:
    """``coro`` under a deadline that raises ``WaitTimeout`` (not a bare TimeoutError)."""
    try:
        async with asyncio.timeout(timeout) as scope:
            return await coro
    except TimeoutError:
        if scope.expired():
            raise _timeout(what, timeout) from None
        raise


def _make_reentrant(loop: asyncio.AbstractEventLoop) -> None:
    if getattr(loop, "_nest_patched", False):
        return
    try:  # ipykernel's maintained fork, when present
        import nest_asyncio2 as nest
    except ImportError:
        import nest_asyncio as nest
    nest.apply(loop)


def _nothing() -> None:
    """A callback that does nothing: a placeholder in the loop's ready queue."""


def _repay(loop: asyncio.AbstractEventLoop, owed: int) -> None:
    """Leave at least ``owed`` handles in ``loop``'s ready queue after a nested run drained it.

    The loop's iteration that is running the caller counted its ready handles before the call and
    pops that many. When that iteration is asyncio's own (the first blocking call, the one that
    patched the loop, is made from inside it), a nested run that ran those handles leaves it
    popping from an empty queue: ``IndexError: pop from an empty deque`` ends the loop and, in
    Jupyter, kills the kernel (erdewit/nest_asyncio#11). It still owes at most the handles that
    were ready when the nested run began; cancelled placeholders make up the difference, and every
    loop skips a cancelled handle.
    """
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return
    for _ in range(owed - len(ready)):
        loop.call_soon(_nothing).cancel()


class LoopRunner:
    """Runs coroutines on one home loop: the caller's running loop, else the shared portal thread."""

    def __init__(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = _portal()
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def attached(self) -> bool:
        """True when the home loop is the caller's own (Jupyter), not the portal."""
        return self.loop is not _portal_loop

    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run to completion and return the result, blocking the caller; ``WaitTimeout`` after ``timeout`` seconds."""
        what = str(getattr(coro, "__qualname__", None) or type(coro).__name__)
        bounded = _bounded(coro, timeout, what)
        if self._in_loop_thread():
            _make_reentrant(self.loop)
            owed = len(getattr(self.loop, "_ready", ()))
            try:
                return self.loop.run_until_complete(bounded)
            finally:
                _repay(self.loop, owed)
        if not self.loop.is_running() and not self.loop.is_closed():
            return self.loop.run_until_complete(bounded)
        future = asyncio.run_coroutine_threadsafe(bounded, self.loop)
        try:
            # The deadline runs on the loop; this one only guards against a loop that never gets to it.
            return future.result(None if timeout is None else timeout + _GRACE)
        except concurrent.futures.TimeoutError:
            if future.done():
                raise  # the coroutine's own TimeoutError (or WaitTimeout): it speaks for itself
            future.cancel()
            raise _timeout(what, timeout) from None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start in the background and return at once."""
        if self._in_loop_thread():
            task = self.loop.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            asyncio.run_coroutine_threadsafe(coro, self.loop)


def run_detached(make: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run a coroutine on its own loop in a short-lived thread, waiting at most ``timeout`` seconds.

    A bounded blocking call that works from any context: a script, or a running loop such as
    Jupyter's (which it holds up for at most ``timeout``), without nest-asyncio.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="seqnb-detached", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise WaitTimeout(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
