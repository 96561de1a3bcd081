"""An absurd charge (``cost`` 1e308, infinite, far above the estimate) never breaks money, spend or a team budget.

A stand-in service over loopback HTTP charges 1e308 for a run; a ledger row is also written by hand
(what any member of a team ledger can do). The charge stays on its row, but neither ``spend()`` nor
the team budget sums it: its run counts its estimate, and a budget check still says ``BudgetExceeded``.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import seqnb
from seqnb.ledger.budget import BELIEVED_CHARGE
from seqnb.ledger.frames import believed_charge
from seqnb.model.pricing import charge_ceiling, charge_suspect, format_money
from tests import postgres
from tests.client.test_charged_cost import OWL2, client_for
from tests.hostile import HostileServer, Reply, Script, accepted
from tests.postgres import Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: the SQL rule runs on SQLite, then PostgreSQL


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("1e308", "USD 1.000E+308"),
        ("-1e308", "USD -1.000E+308"),
        ("Infinity", "USD infinite"),
        ("-Infinity", "USD -infinite"),
        ("NaN", "USD not a number"),
        ("123456789012345.678", "USD 123456789012345.678"),
        ("0.08", "USD 0.08"),
        ("0.105", "USD 0.105"),
    ],
)
def test_format_money_never_raises(amount: str, shown: str) -> None:
    assert format_money(Decimal(amount), "USD") == shown


def test_a_charge_far_above_its_estimate_or_no_amount_is_suspect() -> None:
    assert charge_suspect(Decimal("0.08"), Decimal("0.08")) is None
    assert charge_suspect(Decimal("0.08"), Decimal("8.00")) is None  # 100x: still believed
    said = charge_suspect(Decimal("0.08"), Decimal("1e308"))
    assert said is not None and "USD 1.000E+308" in said and "USD 0.08" in said and "not counted" in said
    assert charge_suspect(Decimal("0.08"), Decimal("8.01")) is not None
    assert charge_suspect(Decimal("0"), Decimal("0.50")) is None  # at most USD 1.00 is never suspect on its own
    assert charge_suspect(None, Decimal("40")) is None and charge_suspect(None, Decimal("100.01")) is not None
    for odd in ("Infinity", "NaN", "-0.01"):
        assert charge_suspect(Decimal("0.08"), Decimal(odd)) is not None


ESTIMATES = [None, "0", "0.08", "0.6", "-1", "1e308"]
COSTS = ["0", "0.08", "0.99", "1.0", "7.99", "8.0", "8.01", "60", "60.01", "100", "100.01", "1e308", "-0.01"]


def test_the_ledgers_sql_and_frames_believe_exactly_the_charges_pricing_believes(target: Target) -> None:
    """One rule in three languages (Python, SQL on each store, pandas): they agree on every estimate and charge."""
    pairs = list(itertools.product(ESTIMATES, COSTS))
    expected = [charge_suspect(None if e is None else Decimal(e), Decimal(c)) is None for e, c in pairs]
    store = target.store()
    try:
        store.execute("CREATE TABLE charges (n INTEGER, est_cost TEXT, cost TEXT)")
        for n, (e, c) in enumerate(pairs):
            store.execute("INSERT INTO charges VALUES (?, ?, ?)", (n, e, c))
        in_sql = [bool(v) for (v,) in store.execute(f"SELECT {BELIEVED_CHARGE} FROM charges ORDER BY n").fetchall()]
    finally:
        store.close()
    frame = pd.DataFrame(pairs, columns=["est_cost", "cost"]).apply(pd.to_numeric).astype("float64")
    assert in_sql == expected
    assert believed_charge(frame).tolist() == expected
    assert charge_ceiling(Decimal("0.08")) == Decimal("8.00")


def run_charged(server: HostileServer, ledger: seqnb.Ledger, cost: str) -> seqnb.AsyncRun:
    """One 4.5 run of 2 images (estimated USD 0.08) whose result says it cost ``cost`` (raw JSON)."""
    body = '{"request_id": "req-1", "status": "completed", "output": {"images": ["https://x.test/a.png"]}'
    server.play(
        Script(
            submit=[accepted()],
            status=[Reply(200, {"status": "completed"})],
            result=[Reply(raw=(body + f', "cost": {cost}}}').encode())],
        )
    )

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        client.use_ledger(ledger)
        run = await client.submit(seqnb.Request("seedream-4.5", OWL2, count=2, seed=1))
        await run.wait(10)
        await client.aclose()
        return run

    return asyncio.run(go())


def submit_one(server: HostileServer, ledger: seqnb.Ledger) -> seqnb.AsyncRun:
    server.play(Script(submit=[accepted("req-2")], status=[Reply(200, {"status": "in_queue"})]))

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        client.use_ledger(ledger)
        try:
            return await (await client.submit(seqnb.Request("seedream-4.5", OWL2, count=2, seed=2))).accepted()
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_charge_of_1e308_is_kept_but_never_summed_and_a_budget_still_refuses_cleanly(
    server: HostileServer, tmp_path: Path
) -> None:
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")
    run = run_charged(server, ledger, "1e308")
    assert run.status == "completed"
    row = ledger.runs().iloc[0]
    assert float(row["cost"]) == 1e308  # the service's word stays on the row, for the record
    assert "SUSPECT CHARGE" in run.note and "SUSPECT CHARGE" in row["note"]  # and the run says why it is not counted
    spend = ledger.spend().iloc[0]
    assert spend["charged"] == pytest.approx(0.08) and spend["cost_known"] == 0  # the estimate counts
    assert ledger.spend(actual=True).iloc[0]["actual"] == 0
    assert ledger.committed("USD", "runcomfy") == Decimal("0.08")

    ledger.set_budget("0.10")  # 0.08 committed + 0.08 asked: over, said as BudgetExceeded
    with pytest.raises(seqnb.BudgetExceeded, match=r"USD 0\.08.*USD 0\.08.*USD 0\.10"):
        submit_one(server, ledger)
    assert server.calls["submit"] == 0  # nothing sent
    ledger.set_budget("1.00")  # room: the absurd charge takes none of it
    assert submit_one(server, ledger).request_id == "req-2"
    ledger.close()


def copy_row(path: Path, run_id: str, new_id: str, cost: str) -> None:
    """A copy of a run's row under another id with another ``cost``, written straight into the file."""
    db = sqlite3.connect(path)
    columns = [c for (_, c, *_) in db.execute("PRAGMA table_info(runs)")]
    given = {"id": new_id, "request_id": "r-" + new_id, "cost": cost}
    select = ", ".join("?" if c in given else c for c in columns)
    params = [given[c] for c in columns if c in given]
    db.execute(f"INSERT INTO runs ({', '.join(columns)}) SELECT {select} FROM runs WHERE id = ?", (*params, run_id))
    db.commit()
    db.close()


def test_rows_a_teammate_wrote_by_hand_never_break_spend_or_the_budget(server: HostileServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = seqnb.Ledger(path)
    first = run_charged(server, ledger, "0.08")
    ledger.close()
    for n, cost in enumerate(["1e308", "1e308", "-5", "9e999"]):  # 9e999: an infinite REAL to SQLite
        copy_row(path, first.id, f"hand-{n}", cost)
    ledger = seqnb.Ledger(path)
    assert ledger.committed("USD", "runcomfy") == Decimal("0.40")  # five runs, each at its estimate
    assert ledger.spend().iloc[0]["charged"] == pytest.approx(0.40)
    ledger.set_budget("0.45")
    with pytest.raises(seqnb.BudgetExceeded, match=r"USD 0\.40"):
        submit_one(server, ledger)
    ledger.close()
