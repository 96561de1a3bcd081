"""A plan is the sweep it says it is, and seqnb's warnings point at the user's line (issue #23)."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import pytest

import seqnb
from seqnb.client.core import AsyncClient
from seqnb.client.money import BalanceUnchecked
from seqnb.testing import FAST, emulator

CAT = "Generate 1 image of a cat"
CLOSED = "http://127.0.0.1:9"  # nothing listens there: the balance cannot be read


def test_a_plan_is_sent_under_the_id_it_printed(tmp_path: Path) -> None:
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        plan = client.plan(prompts=[CAT, "Generate 1 image of a dog"], seeds=[1, 2])
        assert plan.id in plan.summary()
        runs = client.sweep(plan, budget="1.00", quiet=True)
        assert runs.id == plan.id and runs.plan is plan and len(runs) == 4
        client.wait_all(runs, timeout=60)
        assert client.ledger is not None and client.ledger.sweeps() == [plan.id]
        assert set(client.ledger.runs(sweep=plan.id)["status"]) == {"completed"}
        with pytest.raises(seqnb.SettingInvalid, match="sent already"):
            client.sweep(plan, quiet=True)
        with pytest.raises(seqnb.SettingInvalid, match="the plan alone"):
            client.sweep(client.plan(prompts=[CAT]), seeds=[3], quiet=True)
        with pytest.raises(seqnb.BudgetExceeded):
            client.sweep(client.plan(prompts=[CAT], seeds=range(5)), budget="0.01", quiet=True)
        client.close()


def test_the_balance_warning_points_at_the_users_line_from_a_coroutine() -> None:
    with emulator(**FAST) as emu:

        async def go() -> list[Any]:
            aio = AsyncClient(emu.token, emu.base_url, account_base_url=CLOSED)
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                aio._prepare_sweep(prompts=[CAT], seeds=[1])  # the core called straight from a coroutine
            await aio.aclose()
            return said

        said = asyncio.run(go())
    unchecked = [w for w in said if w.category is BalanceUnchecked]
    assert unchecked and all(w.filename == __file__ for w in unchecked), [(w.filename, w.lineno) for w in said]


def test_a_duplicate_submit_warning_points_at_the_users_line() -> None:
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
        request = seqnb.Request("seedream-4.5", CAT, count=1, seed=5)
        client.submit(request)
        with pytest.warns(seqnb.DuplicateSubmitWarning) as said:
            client.submit(request)
        assert said[0].filename == __file__
        client.wait_all(timeout=30)
        client.close()


def test_a_sweep_across_models_of_different_sizes_says_so_before_it_is_sent(tmp_path: Path) -> None:
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        with pytest.warns(seqnb.SeqnbWarning, match=r"models make different sizes .* sizes=\['2560x1440'\]"):
            runs = client.sweep(prompts=[CAT], seeds=[1], models=["seedream-4.0", "seedream-4.5"], quiet=True)
        client.wait_all(runs, timeout=30)
        client.close()


def test_sweep_count_says_counts(tmp_path: Path) -> None:
    """client.sweep(..., count=2) raised a raw TypeError (#33): the axis is counts=."""
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        with pytest.raises(seqnb.SettingInvalid, match=r"counts=\[2\]"):
            client.sweep(prompts=[CAT], count=2, quiet=True)
        assert client.runs() == []
        client.close()


def test_a_plan_with_invalid_runs_says_so_and_why_not_estimated_nothing() -> None:
    from seqnb.model.sweep import plan_sweep

    plan = plan_sweep(prompts=["Generate 2 images of a fox", CAT], counts=[1])
    said = plan.summary()
    assert "1 invalid, cannot be sent" in said and "first: count:" in said and "estimated" not in said
    assert plan_sweep(prompts=[CAT], counts=[1]).summary().endswith("estimated USD 0.04")
