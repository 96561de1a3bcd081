"""A failure at any await of the network path: every run still ends in a documented state, and waits return.

The k-th call raises an arbitrary exception, for every k of a small session (three submits, their
polls, one cancel): once at the bottom (the k-th HTTP request inside httpx), once at the top (the
k-th call of seqnb's transport).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import seqnb
from seqnb import errors
from seqnb.api.transport import RetryPolicy
from seqnb.client.core import AsyncClient
from seqnb.emulator import EmulatorServer
from seqnb.runs.pacing import PollPolicy
from seqnb.runs.run import TERMINAL
from seqnb.testing import emulator

FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05, submit_attempts=3, max_retry_after=0.1)
FAST_POLL = PollPolicy(first=0.02, fast=0.02, cap_queued=0.1, cap_running=0.1, cap_far=0.1)
FAULTS: list[BaseException] = [
    RuntimeError("boom"),
    KeyError("status"),
    ValueError("odd"),
    TypeError("NoneType is not subscriptable"),
    OSError(104, "reset"),
    AttributeError("get"),
    httpx.ReadError("read"),
    TimeoutError(),
    errors.ServerError("injected", status_code=500),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
]
SESSION_CALLS = 22  # more than the 17 HTTP calls a faultless session makes here


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with emulator(
        queue_wait=0.3, base_seconds=0.05, seconds_per_image=0.01, workers=64
    ) as server:  # the sessions run side by side
        yield server


class FaultyHTTP(httpx.AsyncBaseTransport):
    """The k-th HTTP request raises ``fault`` instead of going out."""

    def __init__(self, k: int, fault: BaseException) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.k, self.fault, self.n = k, fault, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.n += 1
        if self.n == self.k:
            raise self.fault
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def faulty_calls(client: AsyncClient, k: int, fault: BaseException) -> list[int]:
    """The k-th call of seqnb's transport (submit or call) raises ``fault``; returns the call counter."""
    transport = client._transport
    count = [0]

    def wrap(method: Any) -> Any:
        async def wrapped(*args: Any, **kw: Any) -> Any:
            count[0] += 1
            if count[0] == k:
                raise fault
            return await method(*args, **kw)

        return wrapped

    transport.submit = wrap(transport.submit)  # type: ignore[method-assign]
    transport.call = wrap(transport.call)  # type: ignore[method-assign]
    return count


def req(seed: int) -> seqnb.Request:
    return seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=seed)


async def session(emu: EmulatorServer, k: int, where: str) -> tuple[list[seqnb.AsyncRun], int]:
    """Three runs sent, one cancelled, all awaited, with the k-th call faulty; the runs and how many calls were made."""
    fault = FAULTS[k % len(FAULTS)]
    if where == "http":
        http = httpx.AsyncClient(
            base_url=emu.base_url + "/v1",
            transport=(faulty := FaultyHTTP(k, fault)),
            headers={"Authorization": f"Bearer {emu.token}"},
            timeout=5,
        )
        client = AsyncClient(emu.token, emu.base_url, retry=FAST_RETRY, poll=FAST_POLL, http=http)
        calls = [0]
    else:
        client = AsyncClient(emu.token, emu.base_url, retry=FAST_RETRY, poll=FAST_POLL)
        calls = faulty_calls(client, k, fault)
    runs = [client._prepare(req(seed=100 * k + i)) for i in range(3)]
    for run in runs:
        try:
            await client._send(run)
        except errors.SeqnbError:
            assert run.status in ("failed", "unknown")
    with contextlib.suppress(errors.SeqnbError):
        await runs[2].cancel()
    for run in runs:
        await run.wait(20)  # raises seqnb.WaitTimeout if a run were stranded
    await client.aclose()
    return runs, faulty.n if where == "http" else calls[0]


def problems_of(runs: list[seqnb.AsyncRun]) -> list[str]:
    problems = []
    for run in runs:
        if run.status not in TERMINAL:
            problems.append(f"stranded: {run.summary()}")
        elif run.request_id is None:  # the fault hit its submit
            if run.status not in ("failed", "unknown") or not run.error:
                problems.append(f"unsent but {run.summary()}")
        elif run.status not in ("completed", "cancelled"):
            problems.append(f"sent but {run.summary()}")
    return problems


@pytest.mark.parametrize("where", ["http", "calls"])
def test_a_fault_at_any_call_leaves_every_run_in_a_documented_state(emu: EmulatorServer, where: str) -> None:
    """Every k at once: the sessions are independent (a client and a fault each), so they run side by side."""

    stray: list[dict[str, Any]] = []  # exceptions no task retrieved: a fault that escaped into the loop

    async def every_k() -> list[tuple[list[seqnb.AsyncRun], int]]:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: stray.append(context))
        return await asyncio.gather(*(session(emu, k, where) for k in range(1, SESSION_CALLS + 1)))

    failures, calls_made = {}, []
    for k, (runs, calls) in enumerate(asyncio.run(every_k()), start=1):
        calls_made.append(calls)
        if problems := problems_of(runs):
            failures[f"k={k} ({FAULTS[k % len(FAULTS)]!r})"] = problems
    assert not failures, failures
    # the faults reached every stage of a session: three submits, a cancel, a status and a result call per
    # sent run make at least 9 calls (how many more depends on the pace of polls)
    fired = [k for k, calls in enumerate(calls_made, start=1) if calls >= k]
    assert len(fired) >= 9, calls_made
    assert not stray, stray
