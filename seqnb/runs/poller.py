"""One poller for all runs of a client, on one event loop.

Nothing that happens inside a poll ends it silently: an error or an answer seqnb cannot read
becomes a note on the run, and the run is asked about again later, with backoff.

Intervals adapt: fast right after a change, backing off while nothing moves (capped), and, once
a run of the same model and count has completed, aimed at the moment this one should end (the
service's ``created_at``/``finished_at`` tell how long a job takes). Deadlines stop watching a run
without cancelling it. When to look is decided I/O-free, in ``seqnb.runs.pacing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from decimal import Decimal
from typing import Any, Literal

from .. import errors
from ..api import protocol
from ..api.transport import Transport
from ..model.request import Request
from .pacing import DurationModel, PollPolicy, first_delay, next_delay
from .run import AsyncRun, NoteSource, RunEvent, charge_differs, expected_charge

__all__ = ["Poller"]

log = logging.getLogger("seqnb.poller")


class Poller:
    """Watches many runs with one task on the client's loop, asking through the client's transport."""

    def __init__(self, transport: Transport, policy: PollPolicy | None = None, cost_source: str = "runcomfy") -> None:
        self.transport = transport
        self.cost_source = cost_source
        """Who a charge read from a result comes from (the backend's kind: ``runcomfy``, ``emulator``)."""
        self.policy = policy or PollPolicy()
        self.durations = DurationModel()
        self._heap: list[tuple[float, int, AsyncRun]] = []
        self._gen: dict[str, int] = {}
        self._quiet: dict[str, int] = {}
        self._deadlines: dict[str, float] = {}
        self._counter = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._polling: set[str] = set()
        self._problems: dict[str, str] = {}
        self._by_kind: dict[tuple[str, int], set[AsyncRun]] = {}
        self._last: dict[str, float] = {}
        self._tokens = 1.0
        self._refilled = time.monotonic()
        self._queued_seen: dict[str, float] = {}
        """Runs a poll saw waiting in the queue, and when it last did (wall clock)."""
        self._started: dict[str, float] = {}
        """For those runs: when they were seen to start (the middle of the two polls around it)."""

    def expected_end(self, run: AsyncRun) -> float | None:
        """When the run should end: from its submit, or, for one that waited in the queue, from its start."""
        if run.id in self._queued_seen:
            started = self._started.get(run.id)
            return None if started is None else self.durations.expected_end(run, started)
        return self.durations.expected_end(run)

    def watch(self, run: AsyncRun, delay: float | None = None, deadline: float | None = None) -> None:
        """Start (or keep) watching a run; must be called on the client's loop."""
        if run.done:
            return
        run.watching = True
        self._by_kind.setdefault(run.kind, set()).add(run)
        if deadline is not None:
            self._deadlines[run.id] = time.monotonic() + deadline
        if delay is None:  # many runs in flight spread their first looks over their shared budget
            delay = first_delay(self.policy, self._siblings(run))
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
        self._forget(run)

    def scheduled(self, run: AsyncRun) -> bool:
        """Whether a poll of this run is under way or due (what "watched" promises)."""
        if run.id in self._polling:
            return True
        gen = self._gen.get(run.id)
        return run.watching and any(g == gen and r is run for _, g, r in self._heap)

    def _forget(self, run: AsyncRun) -> None:
        self._gen.pop(run.id, None)  # its entries left in the heap no longer match: dropped when due
        self._last.pop(run.id, None)
        self._queued_seen.pop(run.id, None)
        self._started.pop(run.id, None)
        self._deadlines.pop(run.id, None)
        self._quiet.pop(run.id, None)
        self._problems.pop(run.id, None)
        siblings = self._by_kind.get(run.kind)
        if siblings is not None:
            siblings.discard(run)

    def _siblings(self, run: AsyncRun) -> int:
        """Runs of the same kind being watched (itself included)."""
        return max(1, len(self._by_kind.get(run.kind, ())))

    def _schedule(self, run: AsyncRun, delay: float) -> None:
        gen = next(self._counter)  # unique: an entry of an earlier watch never matches again
        self._gen[run.id] = gen
        at = time.monotonic() + delay
        last = self._last.get(run.id)
        if last is not None:
            at = max(at, last + self.policy.min_interval)
        heapq.heappush(self._heap, (at, gen, run))  # gen: unique, so also the tie-break

    async def _await_token(self) -> None:
        while wait := self._take_token(time.monotonic()):
            await asyncio.sleep(wait)

    def _take_token(self, now: float) -> float:
        """0 when a poll may go now (and takes a token), else seconds until the client-wide cap allows one."""
        rate = self.policy.max_rate
        if rate is None:
            return 0.0
        self._tokens = min(1.0, self._tokens + (now - self._refilled) * rate)  # no bursts: evenly spaced
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / rate

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self._step()
            except Exception:  # never let the one poll task end: every watched run depends on it
                log.exception("seqnb poller step failed; carrying on")
                await asyncio.sleep(self.policy.fast)

    async def _step(self) -> None:
        assert self._wake is not None
        now = time.monotonic()
        held = 0.0
        while self._heap and self._heap[0][0] <= now:
            _, gen, run = self._heap[0]
            if gen != self._gen.get(run.id) or run.done or not run.watching:
                heapq.heappop(self._heap)
                continue
            deadline = self._deadlines.get(run.id)
            if deadline is not None and now >= deadline:
                heapq.heappop(self._heap)
                self._stop_watching(run)
                continue
            held = self._take_token(now)
            if held:  # the client-wide cap: the earliest due poll waits for the next token
                break
            heapq.heappop(self._heap)
            self._last[run.id] = now
            self._polling.add(run.id)
            task = asyncio.get_running_loop().create_task(self._poll(run))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        self._wake.clear()
        timeout = held or ((self._heap[0][0] - time.monotonic()) if self._heap else None)
        if timeout is None and not self._inflight:
            await self._wake.wait()
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands as the event is set,
        # and stop() (so close()) would then wait for this task forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout if timeout is not None else 1.0):
                await self._wake.wait()

    def _stop_watching(self, run: AsyncRun) -> None:
        run.watching = False
        self._forget(run)
        run.say("watch", f"stopped watching at its deadline while {run.status}; it was not cancelled")
        run.emit(RunEvent(run, run.status, run.status, time.time(), "deadline"))

    async def _poll(self, run: AsyncRun) -> None:
        try:
            changed = False
            try:
                expected = self.expected_end(run)
                due = expected is not None and time.time() >= expected - self.policy.margin
                # At RunComfy's pace a running job is asked with the result call alone: it answers the
                # current state until the end, then the result, so each look is one call.
                paced = self.policy.max_rate is not None and run.status == "in_progress"
                changed = await self.poll_once(run, via_result=due or paced)
            except errors.SeqnbError as exc:
                log.warning("status of run %s failed after retries: %s", run.id, exc)
                self._problem(run, f"status calls fail ({exc}); seqnb keeps asking")
            except Exception as exc:  # a bug or an answer nothing foresaw: keep the run watched, say so
                log.exception("polling run %s failed", run.id)
                self._problem(
                    run, f"seqnb could not follow the service's answer ({type(exc).__name__}: {exc}); it keeps asking"
                )
            if run.done:
                self._forget(run)
                return
            if not run.watching:
                return
            quiet = 0 if changed else self._quiet.get(run.id, 0) + 1
            self._quiet[run.id] = quiet
            try:
                expected = self.expected_end(run)
                until = None if expected is None else expected - time.time()
                delay = next_delay(self.policy, run.status, quiet, until, self._siblings(run), run.queue_position)
            except Exception:
                log.exception("planning the next poll of run %s failed", run.id)
                delay = self.policy.cap_queued
            self._schedule(run, delay)
            assert self._wake is not None
            self._wake.set()
        finally:
            self._polling.discard(run.id)

    def _problem(self, run: AsyncRun, text: str) -> None:
        """Show on the run why polling is not getting through (once per distinct problem)."""
        text = text if len(text) <= 400 else text[:397] + "..."
        if self._problems.get(run.id) == text:
            return
        self._problems[run.id] = text
        run.say("poll", text)
        run.emit(RunEvent(run, run.status, run.status, time.time(), "poll problem"))

    def _solved(self, run: AsyncRun) -> None:
        problem = self._problems.pop(run.id, None)
        if problem is not None and run.notes.get("poll") == problem:
            run.say("poll", "")

    async def poll_once(self, run: AsyncRun, *, via_result: bool = False) -> bool:
        """Ask the service about a run; returns whether its state changed.

        Normally a status call, then the result once it has ended. When the run is expected to have
        ended (``via_result``), the result call alone: it answers the current state while the job
        is not finished, and saves a round trip when it is. An answer seqnb cannot read changes
        nothing (the caller asks again later) and is shown in ``run.note``.
        """
        rid = protocol.request_id(run.request_id)
        if rid is None:
            return run.transition(
                "lost", error=f"request id {protocol.quote(run.request_id)} cannot be asked about (not URL-safe)"
            )
        route: Literal["status", "result"] = "result" if via_result else "status"
        try:
            body = await self.transport.call("GET", _path(rid, route), request_id=rid, route=route)
        except errors.NotFound:
            return run.transition("lost", error=f"the service no longer knows request {rid}")
        seen = protocol.read_result(body) if via_result else protocol.read_status(body)
        if seen.status in ("completed", "failed") and not via_result:
            await self._await_token()  # the follow-up call counts against the client-wide cap too
            body = await self.transport.call("GET", _path(rid, "result"), request_id=rid, route="result")
            seen = protocol.read_result(body)
            if seen.status not in ("completed", "failed", "cancelled"):
                if seen.status is None:
                    self._problem(run, seen.problem or "unreadable result")
                return False  # the result lags the status: ask again soon
        if seen.status is None:
            self._problem(run, seen.problem or "unreadable answer")
            return False
        self._solved(run)
        if seen.status in ("completed", "failed", "cancelled"):
            return self._record_result(run, seen)
        now = time.time()
        if seen.status == "in_queue" and seen.queue_position:
            self._queued_seen[run.id] = now  # it waits behind other jobs: its clock starts when it starts
        elif seen.status == "in_progress" and run.id in self._queued_seen and run.id not in self._started:
            self._started[run.id] = (self._queued_seen[run.id] + now) / 2
        if seen.status == run.status and seen.queue_position == run.queue_position:
            return False
        return run.transition(seen.status, queue_position=seen.queue_position)

    def _record_result(self, run: AsyncRun, seen: protocol.Observation) -> bool:
        """Record an ended run's result; returns whether the state changed."""
        status = seen.status
        assert status is not None
        info: dict[str, Any] = {"server_created_at": seen.created_at, "server_finished_at": seen.finished_at}
        notes: dict[NoteSource, str] = {}
        if status == "completed":
            info["images"] = list(seen.images)
            if len(seen.images) < run.requested:
                notes["result"] = (
                    f"the model returned {len(seen.images)} of {run.requested} images (you pay for {run.requested})"
                )
        elif status == "failed":
            info["error"] = seen.error or "failed"
        if seen.cost is not None:
            info["cost"], info["cost_source"] = seen.cost, self.cost_source
            if charge_differs(run.request, status, seen.cost):
                notes["charge"] = charge_note(run.request, status, seen.cost, self.cost_source)
        elif seen.cost_problem and status != "cancelled":
            notes["charge"] = seen.cost_problem
        moved = run.transition(status, notes=notes, **info)  # notes with the change: the ledger writes that row
        started = self._started.get(run.id) if run.id in self._queued_seen else None
        learnable = started is not None or run.id not in self._queued_seen
        if status == "completed" and learnable and self.durations.learn(run, started):
            self._replan(run.kind)
        return moved

    def _replan(self, kind: tuple[str, int]) -> None:
        """The duration of this kind of run changed: bring forward the runs that should end sooner."""
        now = time.time()
        for run in list(self._by_kind.get(kind, ())):
            expected = self.expected_end(run)
            if run.done or expected is None:
                continue
            self._schedule(run, max(0.0, expected - now - self.policy.margin))


def _path(rid: str, route: Literal["status", "result"]) -> str:
    """The status or result call's path; the result asks what the run cost (RunComfy's ``include_cost``)."""
    return f"/requests/{rid}/result?include_cost=true" if route == "result" else f"/requests/{rid}/status"


def charge_note(request: Request, status: str, cost: Decimal, source: str) -> str:
    """What a run's note says when its charge is more than a cent from what seqnb expected."""
    if status == "completed":
        expected = f"estimated USD {expected_charge(request, status):f}"
    else:
        expected = f"expected nothing for a {status} run"
    return f"CHARGE DIFFERS: {source} charged USD {cost:f}, where seqnb {expected}"
