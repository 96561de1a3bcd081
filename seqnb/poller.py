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
    jitter: float = 0.15
    """+- this fraction, so that many runs do not poll in lockstep."""


def next_delay(policy: PollPolicy, status: str, quiet_polls: int, until_expected: float | None) -> float:
    """Seconds until the next status call.

    ``quiet_polls``: polls since the state last changed; ``until_expected``: seconds until the run
    should end, from the durations learned so far (None when nothing is known yet).
    """
    cap = policy.cap_queued if status == "in_queue" else policy.cap_running
    backoff = min(cap, policy.fast * policy.growth**quiet_polls)
    if until_expected is None:
        delay = backoff
    elif until_expected > policy.margin:
        delay = min(until_expected - policy.margin, policy.cap_far)  # aim just before the expected end
    elif until_expected > -policy.overdue_fast:
        delay = policy.fast  # around the expected end: poll fast
    else:
        delay = backoff  # the estimate was wrong: back off as if nothing were known
    return max(0.02, delay * random.uniform(1 - policy.jitter, 1 + policy.jitter))


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

    def learn(self, run: AsyncRun) -> None:
        start, end = _parse_time(run.server_created_at), _parse_time(run.server_finished_at)
        if start is None or end is None:
            if run.submitted_at is None or run.finished_at is None:
                return
            start, end = run.submitted_at, run.finished_at
        seconds = end - start
        if seconds <= 0:
            return
        key = (run.model, run.requested)
        old = self._seconds.get(key)
        self._seconds[key] = seconds if old is None else 0.7 * old + 0.3 * seconds

    def expected_end(self, run: AsyncRun) -> float | None:
        """Wall-clock time the run should end, or None."""
        seconds = self._seconds.get((run.model, run.requested))
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

    def watch(self, run: AsyncRun, delay: float | None = None, deadline: float | None = None) -> None:
        """Start (or keep) watching a run; must be called on the client's loop."""
        if run.done:
            return
        run.watching = True
        if deadline is not None:
            self._deadlines[run.id] = time.monotonic() + deadline
        self._schedule(run, self.policy.first if delay is None else delay)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="seqnb-poller")
        assert self._wake is not None
        self._wake.set()

    def unwatch(self, run: AsyncRun) -> None:
        run.watching = False
        self._gen[run.id] = self._gen.get(run.id, 0) + 1

    @property
    def watched(self) -> int:
        return len({entry[3].id for entry in self._heap if entry[3].watching})

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
        self._deadlines.pop(run.id, None)
        run.note = f"stopped watching at its deadline while {run.status}; it was not cancelled"
        run.emit(RunEvent(run, run.status, run.status, time.time(), "deadline"))

    async def _poll(self, run: AsyncRun) -> None:
        try:
            changed = await self.poll_once(run)
        except errors.SeqnbError as exc:
            log.warning("status of run %s failed after retries: %s", run.id, exc)
            changed = False
        if run.done:
            self._deadlines.pop(run.id, None)
            return
        if not run.watching:
            return
        quiet = 0 if changed else self._quiet.get(run.id, 0) + 1
        self._quiet[run.id] = quiet
        expected = self.durations.expected_end(run)
        until = None if expected is None else expected - time.time()
        self._schedule(run, next_delay(self.policy, run.status, quiet, until))
        assert self._wake is not None
        self._wake.set()

    async def poll_once(self, run: AsyncRun) -> bool:
        """One status call (and the result on completion); returns whether the state changed."""
        assert run.request_id is not None
        rid = run.request_id
        run.polls += 1
        try:
            body = await self.client.transport.call("GET", f"/requests/{rid}/status", request_id=rid)
        except errors.NotFound:
            return run.transition("lost", error=f"the service no longer knows request {rid}")
        status = normalize_status(body.get("status") if isinstance(body, dict) else None)
        if status is None:
            log.warning("run %s: unrecognised status %r", run.id, body)
            return False
        if status in ("completed", "failed"):
            return await self.fetch_result(run)
        position = body.get("queue_position") if status == "in_queue" else None
        if status == run.status and position == run.queue_position:
            return False
        moved = run.transition(status, queue_position=position)
        return moved

    async def fetch_result(self, run: AsyncRun) -> bool:
        """Fetch the result of an ended run and record it; returns whether the state changed."""
        assert run.request_id is not None
        rid = run.request_id
        try:
            body = await self.client.transport.call("GET", f"/requests/{rid}/result", request_id=rid)
        except errors.NotFound:
            return run.transition("lost", error=f"the service no longer knows request {rid}")
        status = normalize_status(body.get("status"))
        if status not in ("completed", "failed", "cancelled"):
            return False  # the result lags the status: ask again soon
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
        if status == "completed":
            self.durations.learn(run)
            self._replan(run)
        return moved

    def _replan(self, finished: AsyncRun) -> None:
        """A new duration is known: bring forward the runs of the same kind that should already be ending."""
        key = (finished.model, finished.requested)
        now = time.time()
        for due, _, gen, run in list(self._heap):
            if run.done or gen != self._gen.get(run.id) or (run.model, run.requested) != key:
                continue
            expected = self.durations.expected_end(run)
            if expected is None:
                continue
            at = time.monotonic() + max(0.0, expected - now - self.policy.margin)
            if at < due - 0.05:
                self._schedule(run, max(0.0, at - time.monotonic()))
