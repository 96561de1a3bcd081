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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from .. import errors
from ..api import protocol
from ..api.transport import Transport
from ..model.pricing import charge_suspect
from ..model.request import Request
from .pacing import DurationModel, PollPolicy, first_delay, next_delay
from .run import NoteSource, RunCore, RunEvent, charge_differs, expected_charge, usd_estimate

__all__ = ["Poller"]

log = logging.getLogger("seqnb.poller")


@dataclass(eq=False)
class _Watch:
    """What the poller keeps about one run it watches; dropped whole when the run ends or is let go."""

    run: RunCore
    gen: int = -1
    """The generation of its due heap entry: an entry with another one is stale and dropped when due."""
    quiet: int = 0
    """Polls in a row that saw no change (the next delay grows with it)."""
    deadline: float | None = None
    """When to stop watching (monotonic), if the caller gave a deadline."""
    last: float | None = None
    """When it was last polled (monotonic): two polls are at least ``min_interval`` apart."""
    polling: bool = False
    problem: str | None = None
    """The problem last shown on the run (``run.notes["poll"]``), until a poll gets through."""
    queued_seen: float | None = None
    """When a poll last saw it waiting in the queue (wall clock): its clock then starts when it starts."""
    started: float | None = None
    """For such a run: when it was seen to start (the middle of the two polls around it)."""


class Poller:
    """Watches many runs with one task on the client's loop, asking through the client's transport."""

    def __init__(self, transport: Transport, policy: PollPolicy | None = None, cost_source: str = "runcomfy") -> None:
        self.transport = transport
        self.cost_source = cost_source
        """Who a charge read from a result comes from (the backend's kind: ``runcomfy``, ``emulator``)."""
        self.policy = policy or PollPolicy()
        self.durations = DurationModel()
        self._watches: dict[str, _Watch] = {}
        self._heap: list[tuple[float, int, _Watch]] = []
        self._counter = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._by_kind: dict[tuple[str, int], set[RunCore]] = {}
        self._tokens = 1.0
        self._refilled = time.monotonic()

    def expected_end(self, run: RunCore) -> float | None:
        """When the run should end: from its submit, or, for one that waited in the queue, from its start."""
        watch = self._watches.get(run.id)
        if watch is not None and watch.queued_seen is not None:
            return None if watch.started is None else self.durations.expected_end(run, watch.started)
        return self.durations.expected_end(run)

    def watch(self, run: RunCore, delay: float | None = None, deadline: float | None = None) -> None:
        """Start (or keep) watching a run; must be called on the client's loop."""
        if run.done:
            return
        run.watching = True
        watch = self._watches.get(run.id)
        if watch is None or watch.run is not run:
            watch = self._watches[run.id] = _Watch(run)
        self._by_kind.setdefault(run.kind, set()).add(run)
        if deadline is not None:
            watch.deadline = time.monotonic() + deadline
        if delay is None:
            delay = self._first_look(run)
        self._schedule(watch, delay)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="seqnb-poller")
        self._wake.set()

    def _first_look(self, run: RunCore) -> float:
        """Seconds until the first look at a run just watched: aimed at its expected end once runs of its kind
        have taught how long they take; before that, many runs in flight spread their first looks over their
        shared budget (which, at 10,000 runs, is minutes: never for a run whose end can be aimed at)."""
        expected = self.expected_end(run)
        if expected is None:
            return first_delay(self.policy, self._siblings(run))
        until = expected - time.time() - self.policy.margin
        return max(self.policy.first, min(until, self.policy.cap_far))

    async def stop(self) -> None:
        """Stop polling (runs keep their state; ``watch`` starts again)."""
        tasks = [t for t in (self._task, *self._inflight) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def unwatch(self, run: RunCore) -> None:
        run.watching = False
        self._forget(run)

    def scheduled(self, run: RunCore) -> bool:
        """Whether a poll of this run is under way or due (what "watched" promises)."""
        watch = self._watches.get(run.id)
        if watch is None or watch.run is not run:
            return False
        return watch.polling or (run.watching and any(g == watch.gen for _, g, _ in self._heap))

    @property
    def watched(self) -> int:
        """How many runs the poller keeps anything about (none once they end)."""
        return len(self._watches)

    def _forget(self, run: RunCore) -> None:
        watch = self._watches.get(run.id)
        if watch is not None and watch.run is run:
            del self._watches[run.id]  # its entries left in the heap no longer match: dropped when due
        siblings = self._by_kind.get(run.kind)
        if siblings is not None:
            siblings.discard(run)

    def _siblings(self, run: RunCore) -> int:
        """Runs of the same kind being watched (itself included)."""
        return max(1, len(self._by_kind.get(run.kind, ())))

    def _schedule(self, watch: _Watch, delay: float) -> None:
        watch.gen = next(self._counter)  # unique: an entry of an earlier watch never matches again
        at = time.monotonic() + delay
        if watch.last is not None:
            at = max(at, watch.last + self.policy.min_interval)
        heapq.heappush(self._heap, (at, watch.gen, watch))  # gen: unique, so also the tie-break

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
        while True:
            try:
                await self._step()
            except Exception:  # never let the one poll task end: every watched run depends on it
                log.exception("seqnb poller step failed; carrying on")
                await asyncio.sleep(self.policy.fast)

    async def _step(self) -> None:
        now = time.monotonic()
        held = 0.0
        while self._heap and self._heap[0][0] <= now:
            _, gen, watch = self._heap[0]
            run = watch.run
            if gen != watch.gen or self._watches.get(run.id) is not watch or run.done or not run.watching:
                heapq.heappop(self._heap)
                continue
            if watch.deadline is not None and now >= watch.deadline:
                heapq.heappop(self._heap)
                self._stop_watching(run)
                continue
            held = self._take_token(now)
            if held:  # the client-wide cap: the earliest due poll waits for the next token
                break
            heapq.heappop(self._heap)
            watch.last = now
            watch.polling = True
            task = asyncio.get_running_loop().create_task(self._poll(watch))
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

    def _stop_watching(self, run: RunCore) -> None:
        run.watching = False
        self._forget(run)
        run.say("watch", f"stopped watching at its deadline while {run.status}; it was not cancelled")
        run.emit(RunEvent(run, run.status, run.status, time.time(), "deadline"))

    async def _poll(self, watch: _Watch) -> None:
        run = watch.run
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
                self._problem(run, watch, f"status calls fail ({exc}); seqnb keeps asking")
            except Exception as exc:  # a bug or an answer nothing foresaw: keep the run watched, say so
                log.exception("polling run %s failed", run.id)
                why = f"seqnb could not follow the service's answer ({type(exc).__name__}: {exc}); it keeps asking"
                self._problem(run, watch, why)
            if run.done:
                self._forget(run)
                return
            if not run.watching or self._watches.get(run.id) is not watch:
                return
            watch.quiet = 0 if changed else watch.quiet + 1
            try:
                expected = self.expected_end(run)
                until = None if expected is None else expected - time.time()
                delay = next_delay(self.policy, run.status, watch.quiet, until, self._siblings(run), run.queue_position)
            except Exception:
                log.exception("planning the next poll of run %s failed", run.id)
                delay = self.policy.cap_queued
            self._schedule(watch, delay)
            self._wake.set()
        finally:
            watch.polling = False

    def _problem(self, run: RunCore, watch: _Watch | None, text: str) -> None:
        """Show on the run why polling is not getting through (once per distinct problem while it is watched; a
        cancel's look or a refresh is outside the watch, and still shown)."""
        text = text if len(text) <= 400 else text[:397] + "..."
        if watch is not None:
            if watch.problem == text:
                return
            watch.problem = text
        run.say("poll", text)
        run.emit(RunEvent(run, run.status, run.status, time.time(), "poll problem"))

    def _solved(self, watch: _Watch | None) -> None:
        if watch is None or watch.problem is None:
            return
        if watch.run.notes.get("poll") == watch.problem:
            watch.run.say("poll", "")
        watch.problem = None

    async def poll_once(self, run: RunCore, *, via_result: bool = False) -> bool:
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
        watch = self._watches.get(run.id)
        watch = watch if watch is not None and watch.run is run else None
        route: Literal["status", "result"] = "result" if via_result else "status"
        followed = False  # the status said it ended, and the result was asked
        try:  # a request the service no longer knows (HTTP 404, or any answer with error_code 404001) is lost
            body = await self.transport.call("GET", _path(rid, route), request_id=rid, route=route)
            seen = protocol.read_result(body) if via_result else protocol.read_status(body)
            if seen.status in ("completed", "failed") and not via_result:
                while wait := self._take_token(time.monotonic()):  # the follow-up call counts against the cap too
                    await asyncio.sleep(wait)
                body = await self.transport.call("GET", _path(rid, "result"), request_id=rid, route="result")
                seen, followed = protocol.read_result(body), True
        except errors.RequestNotFound:
            return run.transition("lost", error=f"the service no longer knows request {rid}")
        if followed and seen.status not in ("completed", "failed", "cancelled"):
            if seen.status is None:
                self._problem(run, watch, seen.problem or "unreadable result")
            return False  # the result lags the status: ask again soon
        if seen.status is None:
            self._problem(run, watch, seen.problem or "unreadable answer")
            return False
        self._solved(watch)
        if seen.status in ("completed", "failed", "cancelled"):
            return self._record_result(run, seen, watch)
        if watch is not None:
            now = time.time()
            if seen.status == "in_queue" and seen.queue_position:
                watch.queued_seen = now  # it waits behind other jobs: its clock starts when it starts
            elif seen.status == "in_progress" and watch.queued_seen is not None and watch.started is None:
                watch.started = (watch.queued_seen + now) / 2
        if seen.status == run.status and seen.queue_position == run.queue_position:
            return False
        return run.transition(seen.status, queue_position=seen.queue_position)

    def _record_result(self, run: RunCore, seen: protocol.Observation, watch: _Watch | None) -> bool:
        """Record an ended run's result; returns whether the state changed."""
        status = seen.status
        assert status is not None
        info: dict[str, Any] = {"server_created_at": seen.created_at, "server_finished_at": seen.finished_at}
        notes: dict[NoteSource, str] = {}
        if status == "completed":
            info["images"] = list(seen.images[: run.requested])  # never more than asked: each one is a download
            if len(seen.images) < run.requested:
                notes["result"] = (
                    f"the model returned {len(seen.images)} of {run.requested} images (you pay for {run.requested})"
                )
            elif len(seen.images) > run.requested:
                notes["result"] = (
                    f"the service answered {len(seen.images)} image URLs for {run.requested} asked; seqnb kept the "
                    f"first {run.requested}"
                )
        elif status == "failed":
            info["error"] = seen.error or "failed"
        if seen.cost is not None:
            info["cost"], info["cost_source"] = seen.cost, self.cost_source
            suspect = charge_suspect(usd_estimate(run.request), seen.cost)
            if suspect is not None:  # kept for the record; spend and the team budget count the estimate
                notes["charge"] = suspect
            elif charge_differs(run.request, status, seen.cost):
                notes["charge"] = charge_note(run.request, status, seen.cost, self.cost_source)
        elif seen.cost_problem and status != "cancelled":
            notes["charge"] = seen.cost_problem
        moved = run.transition(status, notes=notes, **info)  # notes with the change: the ledger writes that row
        queued = watch is not None and watch.queued_seen is not None
        started = watch.started if watch is not None and queued else None
        learnable = started is not None or not queued
        if status == "completed" and learnable and self.durations.learn(run, started):
            self._replan(run.kind)
        return moved

    def _replan(self, kind: tuple[str, int]) -> None:
        """The duration of this kind of run changed: bring forward the runs that should end sooner."""
        now = time.time()
        for run in list(self._by_kind.get(kind, ())):
            expected = self.expected_end(run)
            watch = self._watches.get(run.id)
            if run.done or expected is None or watch is None:
                continue
            self._schedule(watch, max(0.0, expected - now - self.policy.margin))


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
