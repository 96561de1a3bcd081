"""The UI's throttle on a real asyncio loop: pokes coalesce, cancel drops, flush serves; counts, never times."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from seqnb.ui.throttle import Throttle

INTERVAL = 0.01
PAST = 0.1
"""A sleep started after a poke ends after the poke's timer (both on one loop, ordered by deadline)."""


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_many_pokes_within_one_interval_run_the_action_once_and_a_later_poke_again() -> None:
    count = Counter()
    throttle = Throttle(INTERVAL, count)

    async def main() -> None:
        assert all(throttle.poke() for _ in range(500))  # no await between them: all within one interval
        assert count.calls == 0 and throttle.pending
        await asyncio.sleep(PAST)
        assert count.calls == 1 and not throttle.pending
        throttle.poke()
        throttle.poke()
        await asyncio.sleep(PAST)
        assert count.calls == 2

    asyncio.run(main())


def test_cancel_drops_the_pending_action_and_a_later_poke_schedules_anew() -> None:
    count = Counter()
    throttle = Throttle(INTERVAL, count)

    async def main() -> None:
        throttle.poke()
        throttle.cancel()
        await asyncio.sleep(PAST)
        assert count.calls == 0 and not throttle.pending
        throttle.poke()
        await asyncio.sleep(PAST)
        assert count.calls == 1

    asyncio.run(main())


def test_flush_runs_now_and_serves_the_pending_poke() -> None:
    count = Counter()
    throttle = Throttle(INTERVAL, count)

    async def main() -> None:
        throttle.poke()
        throttle.flush()
        assert count.calls == 1
        await asyncio.sleep(PAST)
        assert count.calls == 1  # the timer found nothing left to do

    asyncio.run(main())


def test_an_action_that_pokes_schedules_its_next_run() -> None:
    """A page still waiting for images asks for another rebuild from inside the rebuild (the gallery does)."""
    runs: list[int] = []

    def rebuild() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            assert throttle.poke()

    throttle = Throttle(INTERVAL, rebuild)

    async def main() -> None:
        throttle.poke()
        for _ in range(3):
            await asyncio.sleep(PAST)
        assert runs == [0, 1, 2] and not throttle.pending

    asyncio.run(main())


def test_without_a_running_loop_a_poke_schedules_nothing() -> None:
    count = Counter()
    throttle = Throttle(INTERVAL, count)
    assert throttle.poke() is False and not throttle.pending
    throttle.flush()
    assert count.calls == 1


@pytest.fixture
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_with_spawn_pokes_from_threads_without_a_loop_start_one_wait_on_the_spawned_loop(
    loop_thread: asyncio.AbstractEventLoop,
) -> None:
    count = Counter()
    spawned: list[Coroutine[Any, Any, None]] = []
    throttle = Throttle(INTERVAL, count, spawn=spawned.append)
    pokers = [threading.Thread(target=lambda: [throttle.poke() for _ in range(200)]) for _ in range(4)]
    for t in pokers:
        t.start()
    for t in pokers:
        t.join()
    assert len(spawned) == 1 and throttle.pending and count.calls == 0
    asyncio.run_coroutine_threadsafe(spawned[0], loop_thread).result(10)
    assert count.calls == 1 and not throttle.pending
