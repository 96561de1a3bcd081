"""RunComfy's pace: at most one poll per run per second and a client-wide cap, chosen for anything but the emulator."""

from __future__ import annotations

import asyncio
import time

import pytest

import seqnb
from seqnb import AsyncClient
from seqnb.emulator import EmulatorServer
from seqnb.runs.pacing import PollPolicy
from seqnb.testing import emulator


def test_the_pace_follows_the_backend(emu: EmulatorServer) -> None:
    assert seqnb.Client(emu.token, emu.base_url).aio._poller.policy.min_interval == 0.0  # the emulator: fast
    service = AsyncClient("tok", "https://model-api.runcomfy.net")._poller.policy
    assert service.min_interval == 1.0 and service.max_rate == 10.0
    mine = AsyncClient("tok", "https://model-api.runcomfy.net", poll=PollPolicy.for_service(2.0, 4.0))._poller.policy
    assert mine.min_interval == 2.0 and mine.max_rate == 4.0


@pytest.mark.slow  # RunComfy's real pace: one poll per run per second
def test_one_poll_per_run_per_second_and_a_cap_for_the_client() -> None:
    polls: list[tuple[float, str, str]] = []

    async def go(url: str, token: str) -> list[seqnb.AsyncRun]:
        client = AsyncClient(token, url, poll=PollPolicy.for_service(min_interval=1.0, max_rate=4.0))
        call = client._transport.call

        async def counted(method: str, path: str, **kw: object) -> object:
            if "/requests/" in path:
                polls.append((time.monotonic(), path.split("/")[2], path.rsplit("/", 1)[1]))
            return await call(method, path, **kw)  # type: ignore[arg-type]

        client._transport.call = counted  # type: ignore[method-assign]
        sweep = client._prepare_sweep(prompts=["Generate 1 image of a fox"], seeds=range(12), models=["seedream-4.5"])
        await client._send_all(sweep)
        await client.wait_all(sweep, timeout=120)
        await client.aclose()
        return list(sweep)

    with emulator(workers=12, queue_wait=0.0, service_time=2.5) as emu:
        runs = asyncio.run(go(emu.base_url, emu.token))
    assert {r.status for r in runs} == {"completed"}
    last: dict[str, float] = {}
    for at, rid, route in polls:
        if route != "status":
            continue  # a result call follows a status call that saw the end
        if rid in last:
            assert at - last[rid] >= 0.99, "two status calls of one run less than a second apart"
        last[rid] = at
    times = [at for at, _, _ in polls]
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 5  # 4 calls/s, one more at an edge


def test_runs_sent_after_their_kind_has_ended_are_looked_at_when_they_should_end() -> None:
    """Many runs in flight share a budget of first looks while nobody knows how long a job takes (20 runs at
    one look per second: up to 20 s). Once one has ended, a run sent later is aimed at its own expected end."""

    async def go(url: str, token: str) -> tuple[list[float], float]:
        client = AsyncClient(token, url, poll=PollPolicy(group_rate=1.0))
        first = client._prepare_sweep(prompts=["Generate 1 image of a fox"], seeds=[0], models=["seedream-4.5"])
        await client._send_all(first)
        await client.wait_all(first, timeout=60)
        later = client._prepare_sweep(
            prompts=["Generate 1 image of a fox"], seeds=range(1, 21), models=["seedream-4.5"]
        )
        await client._send_all(later)
        sent = time.time()
        await client.wait_all(later, timeout=60)
        await client.aclose()
        return [r.finished_at - sent for r in later if r.finished_at is not None], sent

    with emulator(workers=32, queue_wait=0.0, service_time=1.0) as emu:
        seen, _ = asyncio.run(go(emu.base_url, emu.token))
    assert len(seen) == 20
    assert max(seen) < 3.0, f"the last of 20 runs of a known kind was seen {max(seen):.1f} s after they were sent"
