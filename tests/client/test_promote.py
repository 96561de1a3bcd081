"""Promote the picks against the emulator over loopback: children of their originals, priced and held to budgets first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import seqnb
from seqnb.client.core import AsyncClient
from seqnb.emulator import EmulatorServer
from seqnb.testing import FAST, emulator

DUSK = "Generate 2 images of a lighthouse at dusk"


def explored(emu: EmulatorServer, tmp_path: Path, **kw: Any) -> tuple[seqnb.Client, list[seqnb.Run]]:
    """Three cheap runs (2K, seeds 1-3), the first and last picked, the middle one rejected."""
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "ledger.sqlite", download=False, **kw)
    runs = list(client.sweep(prompts=[DUSK], seeds=[1, 2, 3], sizes=["2K"], quiet=True))
    client.wait_all(runs, timeout=60)
    runs[0].pick()
    runs[2].pick()
    runs[1].reject()
    return client, runs


def test_promote_two_picks_to_4k_priced_and_recorded_before_any_submit(emu: EmulatorServer, tmp_path: Path) -> None:
    client, (a, _, c) = explored(emu, tmp_path)
    ledger = client.ledger
    assert ledger is not None
    seen: list[tuple[int, int, bool]] = []  # at each promoted submit: promote rows written, submits seen, all priced

    def on_event(event: seqnb.RunEvent) -> None:
        if event.new == "submitting" and event.run.parent_id is not None:
            rows = ledger.runs(ids=None, sweep=event.run.sweep_id)
            seen.append((len(rows), emu.counters.submits, bool(rows["est_cost"].notna().all())))

    client.subscribe(on_event)
    before = emu.counters.submits
    promoted = client.promote(ledger.runs(verdict="picked"), resolution="4K", quiet=True)
    client.wait_all(promoted, timeout=60)
    assert len(promoted) == 2 and [r.status for r in promoted] == ["completed", "completed"]
    assert sorted(seen)[0] == (2, before, True)  # both children priced and written before the first left
    assert emu.counters.submits == before + 2
    assert promoted.plan.total["USD"] == sum(r.request.cost().amount for r in promoted) > 0
    assert {r.parent_id for r in promoted} == {a.id, c.id}
    for child in promoted:
        parent = a if child.parent_id == a.id else c
        assert child.request.get("size") == "4K" and parent.request.get("size") == "2K"
        assert child.request.get("seed") == parent.request.get("seed") and child.request.prompt == DUSK
        assert child.sweep_id == promoted.id != parent.sweep_id
    client.close()


def test_lineage_shows_parents_up_the_chain_and_children_down(emu: EmulatorServer, tmp_path: Path) -> None:
    client, (a, b, _) = explored(emu, tmp_path)
    ledger = client.ledger
    assert ledger is not None
    (child,) = client.promote(a, resolution="4K", quiet=True)
    child.wait(30)
    grandchildren = client.promote([child.id], seed=9, quiet=True)
    client.wait_all(grandchildren, timeout=30)
    (grandchild,) = grandchildren
    assert grandchild.request.get("seed") == 9 and grandchild.request.get("size") == "4K"
    family = ledger.lineage(child.id)
    assert list(zip(family["id"], family["generation"], strict=True)) == [(a.id, -1), (child.id, 0), (grandchild.id, 1)]
    assert list(ledger.lineage(a.id)["generation"]) == [0, 1, 2]
    assert list(ledger.lineage(b.id)["id"]) == [b.id]  # no parent, no child
    with pytest.raises(seqnb.SettingInvalid, match="run_id='r-nope'"):
        ledger.lineage("r-nope")
    client.close()


def test_over_the_budget_nothing_is_sent_nor_recorded(emu: EmulatorServer, tmp_path: Path) -> None:
    client, _ = explored(emu, tmp_path)
    ledger = client.ledger
    assert ledger is not None
    before, rows = emu.counters.submits, ledger.count()
    with pytest.raises(seqnb.BudgetExceeded, match=r"over the budget of 0\.1"):
        client.promote(ledger.runs(verdict="picked"), resolution="4K", budget="0.10", quiet=True)  # 4 images: 0.16
    ledger.set_budget("0.30")  # the team's: 0.24 spent by the exploration, 0.16 more would go over
    with pytest.raises(seqnb.BudgetExceeded):
        client.promote(ledger.runs(verdict="picked"), resolution="4K", quiet=True)
    assert emu.counters.submits == before and ledger.count() == rows and len(client.runs()) == 3
    client.close()


def test_bad_promotes_say_what_to_give_and_send_nothing(emu: EmulatorServer, tmp_path: Path) -> None:
    client, (a, *_) = explored(emu, tmp_path)
    before = emu.counters.submits
    with pytest.raises(seqnb.SettingInvalid, match="nothing to promote"):
        client.promote([], resolution="4K")
    with pytest.raises(seqnb.SettingInvalid, match="cannot promote 'r-nope'"):
        client.promote([a, "r-nope"], resolution="4K")
    with pytest.raises(seqnb.SettingInvalid, match="is not a run"):
        client.promote([42], resolution="4K")
    with pytest.raises(seqnb.RequestInvalid):
        client.promote([a], resolution="8K", quiet=True)
    assert emu.counters.submits == before and len(client.runs()) == 3
    client.close()


def test_over_the_balance_refused_unless_allowed(tmp_path: Path) -> None:
    with emulator(**FAST, balance="0.30") as emu:
        client, _ = explored(emu, tmp_path)  # 6 images at USD 0.04: 0.06 left
        picked = client.ledger.runs(verdict="picked") if client.ledger is not None else None
        assert str(client.balance()) == "USD 0.06"  # read now (a sweep's check reuses a reading a few seconds old)
        with pytest.raises(seqnb.InsufficientBalance, match="allow_over_balance=True"):
            client.promote(picked, resolution="4K", quiet=True)
        assert (emu.counters.submits, emu.counters.submits_rejected) == (3, 0)
        promoted = client.promote(picked, resolution="4K", allow_over_balance=True, quiet=True)
        client.wait_all(promoted, timeout=30)  # sent anyway: the service refuses each (USD 0.08 > 0.06)
        assert emu.counters.submits_rejected == 2 and all(r.parent_id for r in promoted)
        assert all(r.status == "failed" and "not charged" in (r.error or "") for r in promoted)
        client.close()


def test_the_async_client_promotes_the_same_way(emu: EmulatorServer, tmp_path: Path) -> None:
    client, (a, *_) = explored(emu, tmp_path)
    ledger = client.ledger
    client.close()

    async def main() -> list[Any]:
        aio = AsyncClient(emu.token, emu.base_url)
        assert ledger is not None
        aio.use_ledger(ledger)
        try:
            promoted = await aio.promote([a.id], resolution="4K")
            await aio.wait_all(promoted, timeout=30)
            return [(r.parent_id, r.status, r.request.get("size")) for r in promoted]
        finally:
            await aio.aclose()

    assert asyncio.run(main()) == [(a.id, "completed", "4K")]


def test_a_balance_that_cannot_be_read_is_said_at_the_users_line(emu: EmulatorServer, tmp_path: Path) -> None:
    from seqnb.client.money import BalanceUnchecked

    with pytest.warns(BalanceUnchecked):
        client, (a, *_) = explored(emu, tmp_path, account_base_url="http://127.0.0.1:9")  # nothing listens there
    with pytest.warns(BalanceUnchecked, match="without a balance check") as said:
        promoted = client.promote([a], resolution="4K", quiet=True)
    assert said[0].filename == __file__  # the warning points at the user's line, not into seqnb
    client.wait_all(promoted, timeout=30)
    client.close()


def test_a_pick_promoted_twice_is_paid_once_unless_asked_again(emu: EmulatorServer, tmp_path: Path) -> None:
    """A pick promoted from code, then again (the matrix's button, a second cell): one paid submit (#30)."""
    client, (a, *_) = explored(emu, tmp_path)
    first = client.promote([a], resolution="4K", quiet=True)
    client.wait_all(first, timeout=30)
    before = emu.counters.submits
    with pytest.raises(seqnb.SettingInvalid, match=rf"run {a.id} was promoted with these changes already"):
        client.promote([a], resolution="4K", quiet=True)
    assert emu.counters.submits == before and len(client.runs()) == 4  # nothing sent, nothing recorded
    again = client.promote([a], resolution="4K", again=True, quiet=True)
    client.wait_all(again, timeout=30)
    assert emu.counters.submits == before + 1 and again[0].parent_id == a.id
    client.close()


def test_mixed_models_promote_each_where_it_can_and_say_what_was_left(emu: EmulatorServer, tmp_path: Path) -> None:
    """One 4.0 and one 4.5 pick with resolution="4K": the 4.5 one at 4K, a clear word about the 4.0 one (#30)."""
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
    picks = client.sweep(prompts=[DUSK], seeds=[1], models=["seedream-4.0", "seedream-4.5"], quiet=True)
    client.wait_all(picks, timeout=30)
    old, new = picks
    with pytest.warns(
        seqnb.SeqnbWarning,
        match=rf"1 of 2 .*run {old.id} is seedream-4.0, which takes no resolution='4K' \(its best: optimize='standard'\)",
    ):
        promoted = client.promote(picks, resolution="4K", quiet=True)
    assert [(r.parent_id, r.request.get("size")) for r in promoted] == [(new.id, "4K")]
    both = client.promote(picks, resolution="4K", optimize="standard", again=True, quiet=True)  # each at its best
    assert {r.parent_id: (r.request.size, r.request.get("optimize")) for r in both} == {
        old.id: ("2560:1440 (16:9)", "standard"),
        new.id: ("4K", None),
    }
    assert all(" → " in r.label for r in both)  # each named by its original and what changed
    with pytest.raises(
        seqnb.SettingInvalid, match=r"promote \(make chosen runs again with changes.*\): nothing to send"
    ):
        client.promote([old], resolution="4K", quiet=True)
    client.wait_all([*promoted, *both], timeout=30)
    client.close()
