"""One poller for all runs of a client, on one event loop.

Intervals adapt: fast right after a change, backing off while nothing moves (capped), and, once
a run of the same model and count has completed, aimed at the moment this one should end (the
service's ``created_at``/``finished_at`` tell how long a job takes). Deadlines stop watching a run
without cancelling it. ``next_delay`` is the I/O-free core.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import errors
from .runs import AsyncRun, RunEvent, normalize_status

if TYPE_CHECKING:
    from .client import AsyncClient

__all__ = ["DurationModel", "PollPolicy", "Poller", "next_delay"]

log = logging.getLogger("seqnb.poller")
_random = random.Random()  # jitter; the global generator belongs to the user


@dataclass(frozen=True)
class PollPolicy:
    first: float = 0.3
    """First status call after a submit."""
    fast: float = 0.25
    """Interval right after a change, and around an expected finish."""
    growth: float = 1.6
    cap_queued: float = 5.0
    cap_running: float = 2.0
    margin: float = 0.1
    """Poll this long before an expected finish."""
    overdue_fast: float = 3.0
    """Keep polling fast this long past an expected finish."""
    cap_far: float = 30.0
    """Longest sleep towards a far expected finish."""
    group_rate: float = 50.0
    """Status calls per second that all runs of one kind may share while their duration is unknown."""
    jitter: float = 0.15
    """+- this fraction, so that many runs do not poll in lockstep."""


def next_delay(
    policy: PollPolicy, status: str, quiet_polls: int, until_expected: float | None, siblings: int = 1
) -> float:
    """Seconds until the next status call.

    ``quiet_polls``: polls since the state last changed; ``until_expected``: seconds until the run
    should end, from the durations learned so far (None when nothing is known yet); ``siblings``:
    runs of the same kind in flight. While their duration is unknown they share a budget of
    ``group_rate`` calls per second: together they still notice the first completion at once,
    and that completion teaches every one of them when to look next.
    """
    cap = policy.cap_queued if status == "in_queue" else policy.cap_running
    backoff = min(cap, policy.fast * policy.growth**quiet_polls)
    spread = _random.uniform(1 - policy.jitter, 1 + policy.jitter)
    if until_expected is None:
        return max(backoff, siblings / policy.group_rate) * spread
    if until_expected > policy.fast:  # aim just before the expected end (no jitter: it would blur the aim)
        return min(until_expected - policy.margin, policy.cap_far)
    if until_expected > -policy.overdue_fast:
        return policy.fast  # around the expected end: look often
    return backoff * spread  # the estimate was wrong: back off as if nothing were known


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class DurationModel:
    """How long jobs take, per (model, count), learned from completed runs."""

    def __init__(self) -> None:
        self._seconds: dict[tuple[str, int], float] = {}

    def learn(self, run: AsyncRun) -> bool:
        """Fold in a completed run; returns whether the estimate is new or moved by more than 10%."""
        start, end = _parse_time(run.server_created_at), _parse_time(run.server_finished_at)
        if start is None or end is None:
            if run.submitted_at is None or run.finished_at is None:
                return False
            start, end = run.submitted_at, run.finished_at
        seconds = end - start
        if seconds <= 0:
            return False
        old = self._seconds.get(run.kind)
        new = seconds if old is None else 0.7 * old + 0.3 * seconds
        self._seconds[run.kind] = new
        return old is None or abs(new - old) > 0.1 * old

    def expected_end(self, run: AsyncRun) -> float | None:
        """Wall-clock time the run should end, or None."""
        seconds = self._seconds.get(run.kind)
        if seconds is None or run.submitted_at is None:
            return None
        return run.submitted_at + seconds


class Poller:
    """Watches many runs with one task on the client's loop."""

    def __init__(self, client: AsyncClient, policy: PollPolicy | None = None) -> None:
        self.client = client
        self.policy = policy or PollPolicy()
        self.durations = DurationModel()
        self._heap: list[tuple[float, int, int, AsyncRun]] = []
        self._gen: dict[str, int] = {}
        self._quiet: dict[str, int] = {}
        self._deadlines: dict[str, float] = {}
        self._counter = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._by_kind: dict[tuple[str, int], set[AsyncRun]] = {}

    def watch(self, run: AsyncRun, delay: float | None = None, deadline: float | None = None) -> None:
        """Start (or keep) watching a run; must be called on the client's loop."""
        if run.done:
            return
        run.watching = True
        self._by_kind.setdefault(run.kind, set()).add(run)
        if deadline is not None:
            self._deadlines[run.id] = time.monotonic() + deadline
        if delay is None:  # many runs in flight spread their first looks over their shared budget
            spread = self._siblings(run) / self.policy.group_rate
            delay = _random.uniform(self.policy.first, max(self.policy.first, spread))
        self._schedule(run, delay)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="seqnb-poller")
        assert self._wake is not None
        self._wake.set()

    async def stop(self) -> None:
        """Stop polling (runs keep their state; ``watch`` starts again)."""
        tasks = [t for t in (self._task, *self._inflight) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def unwatch(self, run: AsyncRun) -> None:
        run.watching = False
        self._gen[run.id] = self._gen.get(run.id, 0) + 1
        self._forget(run)

    def _forget(self, run: AsyncRun) -> None:
        self._deadlines.pop(run.id, None)
        self._quiet.pop(run.id, None)
        siblings = self._by_kind.get(run.kind)
        if siblings is not None:
            siblings.discard(run)

    def _siblings(self, run: AsyncRun) -> int:
        """Runs of the same kind being watched (itself included)."""
        return max(1, len(self._by_kind.get(run.kind, ())))

    def _schedule(self, run: AsyncRun, delay: float) -> None:
        gen = self._gen.get(run.id, 0) + 1
        self._gen[run.id] = gen
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), gen, run))

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, gen, run = heapq.heappop(self._heap)
                if gen != self._gen.get(run.id) or run.done or not run.watching:
                    continue
                deadline = self._deadlines.get(run.id)
                if deadline is not None and now >= deadline:
                    self._stop_watching(run)
                    continue
                task = asyncio.get_running_loop().create_task(self._poll(run))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            self._wake.clear()
            timeout = (self._heap[0][0] - time.monotonic()) if self._heap else None
            if timeout is None and not self._inflight:
                await self._wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout if timeout is not None else 1.0)

    def _stop_watching(self, run: AsyncRun) -> None:
        run.watching = False
        self._forget(run)
        run.note = f"stopped watching at its deadline while {run.status}; it was not cancelled"
        run.emit(RunEvent(run, run.status, run.status, time.time(), "deadline"))

    async def _poll(self, run: AsyncRun) -> None:
        expected = self.durations.expected_end(run)
        due = expected is not None and time.time() >= expected - self.policy.margin
        try:
            changed = await self.poll_once(run, via_result=due)
        except errors.SeqnbError as exc:
            log.warning("status of run %s failed after retries: %s", run.id, exc)
            changed = False
        if run.done:
            self._forget(run)
            return
        if not run.watching:
            return
        quiet = 0 if changed else self._quiet.get(run.id, 0) + 1
        self._quiet[run.id] = quiet
        expected = self.durations.expected_end(run)
        until = None if expected is None else expected - time.time()
        self._schedule(run, next_delay(self.policy, run.status, quiet, until, self._siblings(run)))
        assert self._wake is not None
        self._wake.set()

    async def poll_once(self, run: AsyncRun, *, via_result: bool = False) -> bool:
        """Ask the service about a run; returns whether its state changed.

        Normally a status call, then the result once it has ended. When the run is expected to have
        ended (``via_result``), the result call alone: it answers the current state while the job
        is not finished, and saves a round trip when it is.
        """
        assert run.request_id is not None
        rid = run.request_id
        run.polls += 1
        path = f"/requests/{rid}/result" if via_result else f"/requests/{rid}/status"
        try:
            body = await self.client.transport.call("GET", path, request_id=rid)
        except errors.NotFound:
            return run.transition("lost", error=f"the service no longer knows request {rid}")
        status = normalize_status(body.get("status") if isinstance(body, dict) else None)
        if status is None:
            log.warning("run %s: unrecognised status %r", run.id, body)
            return False
        if status in ("completed", "failed"):
            if not via_result:
                body = await self.client.transport.call("GET", f"/requests/{rid}/result", request_id=rid)
                status = normalize_status(body.get("status"))
            if status in ("completed", "failed", "cancelled"):
                return self._record_result(run, body)
            return False  # the result lags the status: ask again soon
        position = body.get("queue_position") if status == "in_queue" else None
        if status == run.status and position == run.queue_position:
            return False
        return run.transition(status, queue_position=position)

    def _record_result(self, run: AsyncRun, body: dict[str, Any]) -> bool:
        """Record an ended run's result body; returns whether the state changed."""
        status = normalize_status(body.get("status"))
        assert status is not None
        info: dict[str, Any] = {
            "server_created_at": body.get("created_at"),
            "server_finished_at": body.get("finished_at"),
        }
        if status == "completed":
            output = body.get("output") or {}
            images = list(output.get("images") or [])
            if not images and output.get("image"):
                images = [output["image"]]
            info["images"] = [str(u) for u in images]
            if len(images) < run.requested:
                info["note"] = (
                    f"the model returned {len(images)} of {run.requested} images (you pay for {run.requested})"
                )
        elif status == "failed":
            error = body.get("error")
            info["error"] = (error.get("message") or str(error)) if isinstance(error, dict) else str(error or "failed")
        moved = run.transition(status, **info)
        if status == "completed" and self.durations.learn(run):
            self._replan(run.kind)
        return moved

    def _replan(self, kind: tuple[str, int]) -> None:
        """The duration of this kind of run changed: bring forward the runs that should end sooner."""
        now = time.time()
        for run in list(self._by_kind.get(kind, ())):
            expected = self.durations.expected_end(run)
            if run.done or expected is None:
                continue
            self._schedule(run, max(0.0, expected - now - self.policy.margin))
