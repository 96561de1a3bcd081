"""The emulated queue's scheduling on a fake clock."""

from __future__ import annotations

from seqnb.emulator.queue import JobQueue, QueueConfig


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fifo_over_workers_with_queue_wait_and_speed() -> None:
    clock = Clock()
    q = JobQueue(QueueConfig(workers=2, queue_wait=1.0, base_seconds=1.0, seconds_per_image=1.0, speed=2.0), clock)
    jobs = [q.submit("m", {}, 3) for _ in range(3)]  # each runs (1 + 3) / 2 = 2 s after 0.5 s queued
    q.advance()
    assert [j.state(clock.now) for j in jobs] == ["in_queue"] * 3
    assert [q.position(j) for j in jobs] == [0, 1, 2]
    clock.now += 0.5
    q.advance()
    assert [j.state(clock.now) for j in jobs] == ["in_progress", "in_progress", "in_queue"]
    assert q.position(jobs[2]) == 0 and q.depth() == 1
    clock.now += 2.0
    q.advance()
    assert [j.state(clock.now) for j in jobs] == ["completed", "completed", "in_progress"]
    assert jobs[2].started == 102.5  # started the moment a worker came free


def test_cancel_only_while_queued_and_positions_close_up() -> None:
    clock = Clock()
    q = JobQueue(QueueConfig(workers=1, queue_wait=0, service_time=10), clock)
    a, b, c = (q.submit("m", {}, 1) for _ in range(3))
    q.advance()
    assert not q.cancel(a)
    assert q.cancel(b) and b.state(clock.now) == "cancelled"
    assert q.position(c) == 0
    clock.now += 10
    q.advance()
    assert c.state(clock.now) == "in_progress"


def test_lazy_advance_catches_up_many_jobs() -> None:
    clock = Clock()
    q = JobQueue(QueueConfig(workers=3, queue_wait=0, service_time=1), clock)
    jobs = [q.submit("m", {}, 1) for _ in range(10)]
    clock.now += 3.5
    q.advance()
    assert sum(j.state(clock.now) == "completed" for j in jobs) == 9
    assert jobs[9].state(clock.now) == "in_progress"


def test_unknown_and_expired_ids() -> None:
    clock = Clock()
    q = JobQueue(QueueConfig(workers=1, queue_wait=0, service_time=1, request_ttl=5), clock)
    job = q.submit("m", {}, 1)
    assert q.get("nope") is None
    clock.now += 1
    q.advance()
    assert q.get(job.id) is job
    clock.now += 5.5
    assert q.get(job.id) is None
