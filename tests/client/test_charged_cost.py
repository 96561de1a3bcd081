"""What the service charged, read from the result (``include_cost=true``), recorded beside the estimate and summed.

Against the emulator, and against a stand-in that answers as RunComfy's own nodes expect (a top-level
``cost`` in the result): ``tests.hostile`` over real loopback HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import seqnb
from seqnb.api.transport import RetryPolicy
from seqnb.client.core import AsyncClient
from seqnb.runs.pacing import PollPolicy
from seqnb.testing import emulator
from tests.hostile import HostileServer, Reply, Script, accepted

FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05, submit_attempts=3, max_retry_after=0.2)
FAST_POLL = PollPolicy(first=0.01, fast=0.01, cap_queued=0.05, cap_running=0.05, cap_far=0.05)
FAST_EMU = {"queue_wait": 0.05, "base_seconds": 0.1, "seconds_per_image": 0.05, "workers": 8}
ISO = "2025-01-02T03:04:05.000Z"
OWL2 = "Generate 2 images of an owl"


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


def client_for(server: HostileServer) -> AsyncClient:
    return AsyncClient("tok", server.base_url, retry=FAST_RETRY, poll=FAST_POLL)


def ended(status: str = "completed", **extra: Any) -> Reply:
    body = {"request_id": "req-1", "status": status, "created_at": ISO, "finished_at": ISO}
    body["output"] = {"images": ["https://x.test/a.png", "https://x.test/b.png"]} if status == "completed" else None
    return Reply(200, {**body, **extra})


def run_on(server: HostileServer, script: Script, ledger: seqnb.Ledger) -> seqnb.AsyncRun:
    """One 4.5 run of 2 images (estimated USD 0.08) on the stand-in, recorded in ``ledger``."""
    server.play(script)

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        client.use_ledger(ledger)
        run = await client.submit(seqnb.Request("seedream-4.5", OWL2, count=2, seed=1))
        await run.wait(10)
        await client.aclose()
        return run

    return asyncio.run(go())


def only(frame: Any) -> dict[str, Any]:
    assert len(frame) == 1, frame
    row: dict[str, Any] = frame.iloc[0].to_dict()
    return row


# --- the emulator ------------------------------------------------------------------------------


def test_the_emulators_charge_is_recorded_beside_the_estimate_and_summed(tmp_path: Path) -> None:
    with emulator(**FAST_EMU) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite")
        runs = client.sweep(prompts=[OWL2], seeds=[1, 2, 3], models=["seedream-4.5"], quiet=True)
        client.wait_all(runs, timeout=60)
        assert [(r.status, r.cost, r.cost_source, r.cost_differs) for r in runs] == [
            ("completed", Decimal("0.08"), "emulator", False)
        ] * 3
        assert client.ledger is not None
        rows = client.ledger.runs()
        assert list(rows["cost"]) == [pytest.approx(0.08)] * 3 and set(rows["cost_source"]) == {"emulator"}
        assert list(rows["cost_differs"]) == [False] * 3 and rows["est_source"].notna().all()
        spend = only(client.ledger.spend("model"))
        assert spend["simulated"] == pytest.approx(0.24) and spend["charged"] == 0 and spend["cost_known"] == 3
        actual = only(client.ledger.spend("model", actual=True))
        assert actual["estimated"] == pytest.approx(0.24) and actual["actual"] == pytest.approx(0.24)
        assert actual["difference"] == pytest.approx(0) and actual["flagged"] == 0
        restored = client.ledger.restore(runs[0].id)
        assert restored.cost == Decimal("0.08") and restored.cost_source == "emulator"
        client.close()


@pytest.mark.parametrize(("price", "flagged"), [("0.06", True), ("0.044", False)])
def test_a_charge_more_than_a_cent_off_the_estimate_is_flagged(tmp_path: Path, price: str, flagged: bool) -> None:
    """The emulator's catalog charges ``price`` per image; this client estimates at USD 0.04."""
    with emulator(**FAST_EMU, prices={"seedream-4.5": price}) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", prices={"seedream-4.5": "0.04"})
        run = client.submit(seqnb.Request("seedream-4.5", OWL2, count=2, seed=4)).wait(30)
        charged = Decimal(price) * 2
        assert run.status == "completed" and run.cost == charged and run.request.cost().amount == Decimal("0.08")
        assert run.cost_differs is flagged and ("CHARGE DIFFERS" in run.note) is flagged
        assert client.ledger is not None
        row = only(client.ledger.runs())
        assert row["cost"] == pytest.approx(float(charged)) and bool(row["cost_differs"]) is flagged
        assert ("CHARGE DIFFERS" in row["note"]) is flagged
        assert only(client.ledger.spend())["simulated"] == pytest.approx(float(charged))  # the charge, not the estimate
        actual = only(client.ledger.spend(actual=True))
        assert actual["difference"] == pytest.approx(float(charged) - 0.08) and actual["flagged"] == int(flagged)
        client.close()


# --- a stand-in that answers as RunComfy's nodes expect -----------------------------------------


def test_the_services_charge_is_what_spend_counts(server: HostileServer, tmp_path: Path) -> None:
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")
    script = Script(submit=[accepted()], status=[Reply(200, {"status": "completed"})], result=[ended(cost=0.2)])
    run = run_on(server, script, ledger)
    assert run.status == "completed" and run.cost == Decimal("0.2") and run.cost_source == "runcomfy"
    assert all(q == "include_cost=true" for p, q in zip(server.paths, server.queries, strict=True) if "/result" in p)
    assert "CHARGE DIFFERS" in run.note and "USD 0.2" in run.note and "USD 0.08" in run.note
    spend = only(ledger.spend())
    assert spend["charged"] == pytest.approx(0.2) and spend["cost_known"] == 1 and spend["simulated"] == 0
    actual = only(ledger.spend(actual=True))
    assert (actual["estimated"], actual["actual"], actual["flagged"]) == (pytest.approx(0.08), pytest.approx(0.2), 1)
    assert actual["difference"] == pytest.approx(0.12)


def test_a_failed_run_the_service_charged_counts_and_is_flagged(server: HostileServer, tmp_path: Path) -> None:
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")
    script = Script(
        submit=[accepted()], status=[Reply(200, {"status": "failed"})], result=[ended("failed", cost=0.03, error="x")]
    )
    run = run_on(server, script, ledger)
    assert run.status == "failed" and run.cost == Decimal("0.03") and run.cost_differs is True
    assert "expected nothing for a failed run" in run.note
    assert only(ledger.spend())["charged"] == pytest.approx(0.03)


@pytest.mark.parametrize(
    "cost",
    ['"0.08"', "-0.08", "NaN", "Infinity", "true", '{"usd": 0.08}', "[0.08]", "null", None],
    ids=["string", "negative", "nan", "infinity", "bool", "object", "list", "null", "missing"],
)
def test_an_odd_cost_is_unknown_and_the_estimate_counts(
    server: HostileServer, tmp_path: Path, cost: str | None
) -> None:
    body = '{"request_id": "req-1", "status": "completed", "output": {"images": ["https://x.test/a.png"]}'
    raw = (body + ("}" if cost is None else f', "cost": {cost}}}')).encode()
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")
    run = run_on(
        server,
        Script(submit=[accepted()], status=[Reply(200, {"status": "completed"})], result=[Reply(raw=raw)]),
        ledger,
    )
    assert run.status == "completed" and run.cost is None and run.cost_differs is None
    assert "cost" in run.note and "estimate" in run.note  # the problem is said on the run
    row = only(ledger.runs())
    assert pd.isna(row["cost"]) and pd.isna(row["cost_differs"]) and pd.isna(row["cost_source"])
    spend = only(ledger.spend())
    assert spend["charged"] == pytest.approx(0.08) and spend["cost_known"] == 0  # the estimate stands in
    assert only(ledger.spend(actual=True))["actual"] == 0
