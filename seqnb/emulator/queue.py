"""The emulated service's queue: FIFO jobs on a fixed number of workers, advanced lazily from a clock (the real one,
or a ``ManualClock`` that moves only when a test says so).

No threads and no I/O: every question ("what state is this job in now?") first advances the
schedule to the clock's current time, so the answers are exact and cheap.
"""

from __future__ import annotations

import bisect
import heapq
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["Job", "JobQueue", "ManualClock", "QueueConfig"]

JobState = Literal["in_queue", "in_progress", "completed", "failed", "cancelled"]


@dataclass(frozen=True)
class QueueConfig:
    """How the emulated service paces work. Every duration is divided by ``speed``."""

    workers: int = 4
    queue_wait: float = 0.5
    """Least time a job spends queued, even with a worker free (scheduling latency)."""
    base_seconds: float = 0.5
    seconds_per_image: float = 1.0
    service_time: float | None = None
    """When set, every job runs exactly this long, whatever its image count."""
    speed: float = 1.0
    request_ttl: float = 7 * 24 * 3600.0
    """After this long past its end a request id is forgotten (404001)."""

    def duration(self, count: int) -> float:
        raw = self.service_time if self.service_time is not None else self.base_seconds + self.seconds_per_image * count
        return raw / self.speed


@dataclass
class Job:
    """One accepted request and its schedule."""

    id: str
    seq: int
    model: str
    payload: dict[str, Any]
    count: int
    created_at: float  # wall-clock, for created_at / finished_at
    submitted: float  # clock time
    started: float | None = None
    finished: float | None = None
    cancelled_at: float | None = None
    fail_message: str | None = None
    returned: int = 0
    image_ttl: float = 3600.0
    files: list[str] = field(default_factory=list)
    cost: Decimal = Decimal(0)
    """What the run costs when it completes (price x requested count)."""

    @property
    def end(self) -> float | None:
        """When the job was cancelled, else when it ends (or ended) running; None while it waits for a worker."""
        return self.cancelled_at if self.cancelled_at is not None else self.finished

    def state(self, now: float) -> JobState:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.started is None or now < self.started:
            return "in_queue"
        assert self.finished is not None
        if now < self.finished:
            return "in_progress"
        return "failed" if self.fail_message else "completed"


class JobQueue:
    """FIFO queue over ``workers`` workers, advanced lazily."""

    def __init__(self, config: QueueConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self._seq = 0
        self._waiting: list[int] = []  # seqs of jobs not yet started, ascending
        self._head = 0  # _waiting[:_head] have been started
        self._by_seq: dict[int, Job] = {}
        self._workers = [0.0] * max(1, config.workers)  # min-heap of times each worker is free

    def submit(self, model: str, payload: dict[str, Any], count: int) -> Job:
        now = self.clock()
        self._seq += 1
        job = Job(
            id=secrets.token_hex(16),
            seq=self._seq,
            model=model,
            payload=payload,
            count=count,
            created_at=time.time(),
            submitted=now,
        )
        self.jobs[job.id] = job
        self._by_seq[job.seq] = job
        self._waiting.append(job.seq)
        return job

    def advance(self) -> float:
        """Start every job that a worker could have taken by now; returns now."""
        now = self.clock()
        wait = self.config.queue_wait / self.config.speed
        while self._head < len(self._waiting):
            job = self._by_seq[self._waiting[self._head]]
            start = max(job.submitted + wait, self._workers[0])
            if start > now:
                break
            job.started = start
            job.finished = start + self.config.duration(job.count)
            heapq.heapreplace(self._workers, job.finished)
            self._head += 1
        if self._head > 4096:
            del self._waiting[: self._head]
            self._head = 0
        return now

    def get(self, request_id: str) -> Job | None:
        """The job, unless unknown or past its time to live."""
        job = self.jobs.get(request_id)
        if job is None:
            return None
        if job.end is not None and self.clock() > job.end + self.config.request_ttl:
            self.forget(request_id)
            return None
        return job

    def position(self, job: Job) -> int:
        """How many jobs are ahead of this queued one (0: it is next)."""
        return bisect.bisect_left(self._waiting, job.seq, lo=self._head) - self._head

    def cancel(self, job: Job) -> bool:
        """Cancel a job that has not started; False once it has."""
        now = self.advance()
        if job.cancelled_at is not None:
            return True
        if job.state(now) != "in_queue":
            return False
        index = bisect.bisect_left(self._waiting, job.seq, lo=self._head)
        del self._waiting[index]
        job.cancelled_at = now
        return True

    def forget(self, request_id: str) -> None:
        """Drop a job as a restarted server would (its id then answers 404)."""
        job = self.jobs.pop(request_id, None)
        if job is None:
            return
        self._by_seq.pop(job.seq, None)
        index = bisect.bisect_left(self._waiting, job.seq, lo=self._head)
        if index < len(self._waiting) and self._waiting[index] == job.seq:
            del self._waiting[index]

    def depth(self) -> int:
        """Jobs waiting for a worker."""
        self.advance()
        return len(self._waiting) - self._head


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
