"""HTTP 402 (insufficient balance) on any call: ``InsufficientBalance``, never retried, never in doubt, and it stops a
sweep like a retired model does. Against a stand-in that answers 402 with no ``error_code`` (``tests.hostile``), and
the emulator's own refusal (400002).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import seqnb
from seqnb import errors
from seqnb.testing import emulator
from tests.client import test_charged_cost as cost
from tests.client.test_charged_cost import FAST_EMU, OWL2, client_for, ended, only
from tests.hostile import HostileServer, Reply, Script, accepted

server = cost.server  # fixture: the stand-in, shared with the cost tests


@pytest.mark.parametrize(
    "refusal",
    [Reply(402, {"error_message": "Add funds to your account"}), Reply(402, None), Reply(402, raw=b"Payment Required")],
    ids=["words", "no-body", "text"],
)
def test_a_402_on_submit_is_insufficient_balance_and_stops_the_sweep(
    server: HostileServer, tmp_path: Path, refusal: Reply
) -> None:
    server.play(
        Script(
            submit=[accepted(), refusal],
            status=[Reply(200, {"status": "completed"})],
            result=[ended(cost=0.08)],
        )
    )
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")

    async def go() -> list[seqnb.AsyncRun]:
        client = client_for(server)
        client.use_ledger(ledger)
        runs = client._prepare_sweep(prompts=[OWL2], seeds=range(5), models=["seedream-4.5"], allow_over_balance=True)
        await client._send_all(runs, concurrency=1)
        await client.wait_all(runs[:1], timeout=10)
        await client.aclose()
        return list(runs)

    runs = asyncio.run(go())
    assert server.calls["submit"] == 2  # nothing sent after the 402
    assert [r.status for r in runs] == ["completed", "failed", "failed", "failed", "failed"]
    refused = runs[1].error or ""
    assert "not charged" in refused and "client.balance()" in refused and "add funds" in refused.lower()
    assert "HTTP 402" in refused
    assert all("not sent" in (r.error or "") and "client.balance()" in (r.error or "") for r in runs[2:])
    assert not any(r.status == "unknown" or "pay twice" in (r.error or "") for r in runs)  # nothing in doubt
    spend = only(ledger.spend())
    assert spend["in_doubt"] == 0 and spend["in_flight"] == 0 and spend["charged"] == pytest.approx(0.08)


def test_a_402_stops_a_sweep_sent_several_at_a_time(server: HostileServer) -> None:
    server.play(Script(submit=[Reply(402, {"error_message": "Add funds to your account"})]))

    async def go() -> list[seqnb.AsyncRun]:
        client = client_for(server)
        runs = client._prepare_sweep(prompts=[OWL2], seeds=range(12), models=["seedream-4.5"], allow_over_balance=True)
        await client._send_all(runs, concurrency=3)
        await client.aclose()
        return list(runs)

    runs = asyncio.run(go())
    assert 1 <= server.calls["submit"] <= 3  # only those already on their way when the first 402 came back
    assert all(r.status == "failed" for r in runs) and not any("in doubt" in (r.error or "") for r in runs)


@pytest.mark.parametrize("route", ["status", "result", "cancel"])
def test_a_402_on_any_call_is_insufficient_balance_and_never_retried(server: HostileServer, route: str) -> None:
    refusal = [Reply(402, {"error_message": "Add funds to your account"})]
    server.play(Script(**{route: refusal}))  # type: ignore[arg-type]

    async def go() -> errors.SeqnbError:
        client = client_for(server)
        method = "POST" if route == "cancel" else "GET"
        with pytest.raises(errors.InsufficientBalance) as info:
            await client._transport.call(method, f"/requests/req-1/{route}", request_id="req-1", route=route)  # type: ignore[arg-type]
        await client.aclose()
        return info.value

    error = asyncio.run(go())
    assert server.calls[route] == 1  # not retried
    assert error.status_code == 402 and "Add funds to your account" in str(error) and "client.balance()" in str(error)


def test_the_emulators_balance_refusal_says_the_same() -> None:
    with emulator(**FAST_EMU, balance="0.10") as poor:
        client = seqnb.Client(poor.token, poor.base_url)
        runs = client.sweep(
            prompts=[OWL2], seeds=range(4), models=["seedream-4.5"], quiet=True, allow_over_balance=True, concurrency=1
        )
        client.wait_all(runs, timeout=30)
        statuses = [r.status for r in runs]
        assert statuses[0] == "completed" and statuses[1:] == ["failed"] * 3
        assert "client.balance()" in (runs[1].error or "") and poor.counters.submits_rejected == 1
        client.close()
