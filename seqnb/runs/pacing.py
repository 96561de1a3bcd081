"""When to look at a run next: the pace of polling, as I/O-free functions of what is known (``seqnb.runs.poller``
does the I/O); the ``DurationModel`` learns from completed runs how long jobs take, so the poller can aim at the
moment a run should end."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import RunCore

__all__ = ["DurationModel", "PollPolicy", "first_delay", "next_delay"]

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
    min_interval: float = 0.0
    """At least this long between two polls of one run."""
    max_rate: float | None = None
    """Polls per second for the whole client (a token bucket of one second's worth); None: no cap."""

    @classmethod
    def for_service(cls, min_interval: float = 1.0, max_rate: float = 10.0) -> PollPolicy:
        """The pace for RunComfy itself: like its own CLI, at most one status call per run per second, and
        ``max_rate`` calls per second for the whole client. It still aims at each run's expected end,
        a moment after it (``margin`` < 0), so that one call most often finds the run done."""
        return cls(
            first=min_interval,
            fast=min_interval,
            min_interval=min_interval,
            max_rate=max_rate,
            group_rate=max_rate / 2,
            margin=-0.05,
            cap_queued=max(5.0, min_interval),
            cap_running=max(3.0, min_interval),
        )


def next_delay(
    policy: PollPolicy,
    status: str,
    quiet_polls: int,
    until_expected: float | None,
    siblings: int = 1,
    position: int | None = None,
) -> float:
    """Seconds until the next status call.

    ``quiet_polls``: polls since the state last changed; ``until_expected``: seconds until the run
    should end, from the durations learned so far (None when nothing is known yet); ``siblings``:
    runs of the same kind in flight. While their duration is unknown they share a budget of
    ``group_rate`` calls per second: together they still notice the first completion at once,
    and that completion teaches every one of them when to look next. ``position``: jobs ahead of a
    queued run; the one next in line is looked at often, so that its start is seen soon.
    """
    if status == "in_queue" and position == 0 and until_expected is None:
        return policy.fast
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


def first_delay(policy: PollPolicy, siblings: int = 1) -> float:
    """Seconds until the first status call after a submit: many runs of one kind in flight
    (``siblings``) spread their first looks over their shared budget of ``group_rate`` calls per second."""
    spread = siblings / policy.group_rate
    return _random.uniform(policy.first, max(policy.first, spread))


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

    def learn(self, run: RunCore, started: float | None = None) -> bool:
        """Fold in a completed run; returns whether the estimate is new or moved by more than 10%.

        ``started``: when a run that waited in the queue was seen to start (its wait is no part of
        how long a job takes); else the service's ``created_at`` (or the submit) is the start.
        """
        start, end = _parse_time(run.server_created_at), _parse_time(run.server_finished_at)
        if started is not None:
            start, end = started, end if end is not None else run.finished_at
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

    def expected_end(self, run: RunCore, started: float | None = None) -> float | None:
        """Wall-clock time the run should end (counted from ``started``, else its submit), or None."""
        seconds = self._seconds.get(run.kind)
        start = started if started is not None else run.submitted_at
        return None if seconds is None or start is None else start + seconds
