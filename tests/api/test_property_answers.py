"""Whatever the service answers, over real loopback HTTP: no hang, no stray exception, no duplicate submit,
every run in a documented state, and the ledger still readable.

Hypothesis draws HTTP statuses, headers and JSON bodies (well-formed, half-formed and arbitrary)
for the submit, status, result and cancel answers; one scripted server plays each example.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqnb
from seqnb import errors
from seqnb.api import protocol
from seqnb.api.transport import RetryPolicy
from seqnb.client.core import AsyncClient
from seqnb.runs.pacing import PollPolicy
from seqnb.runs.run import TERMINAL
from tests.hostile import HostileServer, Reply, Script

RETRY = RetryPolicy(attempts=3, base=0.001, cap=0.01, submit_attempts=3, max_retry_after=0.02)
POLL = PollPolicy(first=0.005, fast=0.005, cap_queued=0.02, cap_running=0.02, cap_far=0.02, group_rate=1000)
RUNS = 2

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
words = st.sampled_from(
    ["in_queue", "in_progress", "completed", "failed", "cancelled", "canceled", "succeeded", "queued", "sleeping", ""]
)
statuses = words | json_values
urls = st.sampled_from(["https://x.test/a.png", "https://x.test/b.jpg", "data:image/png;base64,AAAA", "a b", ""])
image_entries = urls | st.fixed_dictionaries({"url": urls | json_values}) | json_values
outputs = (
    st.fixed_dictionaries({}, optional={"images": st.lists(image_entries, max_size=3) | urls, "image": image_entries})
    | st.lists(image_entries, max_size=3)
    | urls
    | json_values
)
times = st.sampled_from(["2025-01-02T03:04:05Z", "2025-01-02 03:04:05", "0001-01-01", "soon"]) | st.integers(
    -(10**13), 10**13
)
times = times | st.floats() | json_values
request_ids = st.sampled_from(["req-1", "r\r\nX: 1", "a/b", "", "é"]) | st.integers() | json_values
error_codes = st.sampled_from([400001, 400002, 400004, 403001, 404001, 500001, 777777, "400001", 0]) | json_values
messages = st.text(max_size=20) | json_values


def answer(route: str) -> st.SearchStrategy[Any]:
    common = {"error_code": error_codes, "error_message": messages, "detail": json_values, "extra": json_values}
    if route == "submit":
        shaped = st.fixed_dictionaries({"request_id": request_ids}, optional=common)
    elif route == "status":
        shaped = st.fixed_dictionaries({"status": statuses}, optional={"queue_position": json_values, **common})
    elif route == "result":
        optional = {"output": outputs, "created_at": times, "finished_at": times, "error": json_values, **common}
        shaped = st.fixed_dictionaries({"status": statuses}, optional=optional)
    else:
        shaped = st.fixed_dictionaries({}, optional={"status": statuses, "outcome": words | json_values, **common})
    return shaped | json_values


http_statuses = st.just(200) | st.sampled_from([200, 400, 401, 403, 404, 409, 418, 422, 429, 500, 502, 503])
retry_after = st.sampled_from(
    [(), (("Retry-After", "3600"),), (("Retry-After", "Wed, 21 Oct 2099 07:28:00 GMT"),), (("Retry-After", "x"),)]
)


def replies(route: str) -> st.SearchStrategy[list[Reply]]:
    reply = st.builds(Reply, status=http_statuses, body=answer(route), headers=retry_after)
    raw = st.builds(Reply, status=http_statuses, raw=st.sampled_from([b"", b"not json", b"{", b"\xff\xfe"]))
    return st.lists(reply | raw, min_size=1, max_size=4)


scripts = st.builds(
    Script, submit=replies("submit"), status=replies("status"), result=replies("result"), cancel=replies("cancel")
)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as path:
        yield Path(path)


async def session(server: HostileServer, ledger: seqnb.Ledger) -> tuple[list[seqnb.AsyncRun], list[Any]]:
    stray: list[Any] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: stray.append(context))
    client = AsyncClient("tok", server.base_url, retry=RETRY, poll=POLL, timeout=5.0)
    client.use_ledger(ledger)
    runs = [
        client._prepare(seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=i))
        for i in range(RUNS)
    ]
    for run in runs:
        with contextlib.suppress(errors.SeqnbError):
            await client._send(run)
    with contextlib.suppress(errors.SeqnbError):
        await runs[0].cancel()
    with contextlib.suppress(errors.WaitTimeout):
        await client.wait_all(runs, timeout=0.3)
    for run in runs:  # documented states only: ended, or watched with a poll under way or due
        assert run.status in TERMINAL or (run.watching and client._poller.scheduled(run)), run.summary()
        if run.request_id is not None:
            assert protocol.request_id(run.request_id) == run.request_id
        if run.server_created_at is not None:
            assert protocol.iso_time(run.server_created_at) == run.server_created_at
    await client.aclose()
    return runs, stray


@pytest.mark.slow  # 40 drawn sessions over HTTP (~12 s)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(script=scripts)
def test_any_answer_ends_in_a_documented_state(server: HostileServer, folder: Path, script: Script) -> None:
    server.play(script)
    ledger = seqnb.Ledger(folder / f"{uuid.uuid4().hex}.sqlite")
    runs, stray = asyncio.run(asyncio.wait_for(session(server, ledger), 30))
    assert not stray, stray
    # no duplicate submit: a run's POST is repeated only after a 429 (the service made nothing)
    for seed in range(RUNS):
        answered = [status for body, status in server.submits if body is not None and body.get("seed") == seed]
        assert len(answered) >= 1 and all(status == 429 for status in answered[:-1]), answered
    frame = ledger.runs()
    assert len(frame) == RUNS and set(frame["status"]) <= {r.status for r in runs}
    ledger.spend()
    ledger.close()
