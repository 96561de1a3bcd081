"""The widgets and what was charged: the job board sums the service's charge where it said one, and the Studio shows
a balance refusal beside the balance. Real widgets, real clients over loopback (the emulator, and a stand-in)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import seqnb
from seqnb.images.cache import ImageCache
from seqnb.runs.pacing import PollPolicy
from seqnb.testing import emulator
from seqnb.ui.job_board import JobBoard
from tests.hostile import HostileServer, Reply, Script, accepted

FAST_POLL = PollPolicy(first=0.01, fast=0.01, cap_queued=0.05, cap_running=0.05, cap_far=0.05)
DONE = {"request_id": "req-1", "status": "completed", "output": {"images": ["https://x.test/a.png"]}}


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


@pytest.mark.parametrize(
    ("result", "spend", "label"),
    [
        (Reply(200, {**DONE, "cost": 0.2}), "USD 0.60", "charged"),  # what the service said, not 3 x USD 0.08
        (Reply(200, DONE), "USD 0.24", "estimated"),  # no cost said: the estimate, called so
    ],
)
def test_the_board_sums_what_the_service_charged(server: HostileServer, result: Reply, spend: str, label: str) -> None:
    server.play(Script(submit=[accepted()], status=[Reply(200, {"status": "completed"})], result=[result]))
    client = seqnb.connect("tok", server.base_url, ledger=False, download=False, poll=FAST_POLL)
    board = JobBoard(client)
    runs = client.sweep(
        prompts=["Generate 2 images of a heron"],
        seeds=[1, 2, 3],
        models=["seedream-4.5"],
        quiet=True,
        allow_over_balance=True,
    )
    client.wait_all(runs, timeout=20)
    row = next(s for s in board.flush()["sweeps"] if s["id"] == runs.id)
    assert (row["spend"], row["spend_label"]) == (spend, label)
    board.close()
    client.close()


def test_the_studio_shows_a_balance_refusal_beside_the_balance(tmp_path: Path) -> None:
    with emulator(balance="0.10", queue_wait=0.05, base_seconds=0.1, seconds_per_image=0.05) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path))
        studio = seqnb.Studio(client)
        assert "balance USD 0.10" in studio.balance.value and "insufficient" not in studio.balance.value
        studio.panel.model.value = "seedream-4.5"
        studio.panel.prompt.value = "Generate 2 images of a heron"
        studio.panel.count.value = 2
        studio.panel.submit().wait(20)  # USD 0.08 of the 0.10
        refused = studio.panel.submit()  # the service refuses the next one: 0.02 left
        assert refused is not None  # sent in the background: refused once the service has answered
        until(lambda: refused.status == "failed")
        assert "client.balance()" in (refused.error or "")
        # Sending read the balance (0.02) before the service refused; the refusal's own read adds the note, later,
        # on the client's loop: wait for the header that read writes, the balance and the note together.
        until(lambda: "balance USD 0.02" in studio.balance.value and "insufficient balance" in studio.balance.value)
        assert "Add funds" in studio.balance.value
        emu.state.account.start += Decimal("1.00")  # funds added on the account
        assert studio.panel.submit().wait(20).status == "completed"  # type: ignore[union-attr]
        until(lambda: "insufficient" not in studio.balance.value)  # accepted again: the refusal is gone
        assert "balance USD" in studio.balance.value
        studio.close()
        client.close()
