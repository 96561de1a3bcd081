"""A blocking call made from inside a running loop never breaks the loop iteration that made it."""

from __future__ import annotations

import asyncio
from asyncio.selector_events import BaseSelectorEventLoop

from seqnb._loop import LoopRunner


class _Unpatched(BaseSelectorEventLoop):
    """A loop class of its own, so that nest-asyncio patches it here for the first time (it patches classes)."""


async def _answer() -> str:
    await asyncio.sleep(0)
    return "answered"


def test_the_first_blocking_call_in_a_loop_leaves_its_iteration_the_handles_it_counted() -> None:
    # As in a Jupyter cell: the loop runs asyncio's own iteration, which counted the ready handles
    # (the cell, then another callback, such as a widget message) before running the cell. The
    # cell's blocking call patches the loop and runs it nested, which runs that other callback too.
    loop = _Unpatched()
    seen: list[str] = []

    def cell() -> None:
        seen.append(LoopRunner().run(_answer(), timeout=5))

    async def main() -> None:
        loop.call_soon(cell)
        loop.call_soon(seen.append, "the next callback")
        await asyncio.sleep(0.05)

    try:
        loop.run_until_complete(main())  # IndexError: pop from an empty deque, before the fix
    finally:
        loop.close()
    assert sorted(seen) == ["answered", "the next callback"]
