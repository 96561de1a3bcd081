"""Batched ledger writes (issue #22): the submits of one moment share a transaction yet each row is committed
before its own POST leaves; later changes of one turn of the loop share one; a read never misses a change.
The real emulator over loopback HTTP and a real SQLite file, read back through a connection of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import seqnb
from seqnb import AsyncClient
from seqnb.api.transport import RetryPolicy
from seqnb.emulator import EmulatorServer
from seqnb.ledger.facade import Ledger

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


def committed_status(path: Path, run_id: str) -> str | None:
    """The run's status as another process would read it now: committed rows only."""
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
    return None if row is None else str(row[0])


def test_the_submits_of_one_moment_share_a_transaction_and_each_row_is_committed_before_its_post(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "l.sqlite"
    batches: list[list[str]] = []
    seen_at_post: dict[str, str | None] = {}

    async def go() -> tuple[list[Any], Ledger]:
        client = AsyncClient(emu.token, emu.base_url, retry=FAST)
        ledger = Ledger(path)
        client.use_ledger(ledger)
        write_rows = ledger.write_rows

        def counted(rows: Any) -> list[bool]:
            batches.append([row["status"] for _, row in rows])
            return write_rows(rows)

        ledger.write_rows = counted  # type: ignore[method-assign]
        submit = client._transport.submit
        by_seed: dict[int, str] = {}

        async def checked(model_id: str, payload: dict[str, Any]) -> Any:
            run_id = by_seed[payload["seed"]]
            seen_at_post[run_id] = committed_status(path, run_id)
            return await submit(model_id, payload)

        client._transport.submit = checked  # type: ignore[method-assign]
        sweep = client._prepare_sweep(prompts=["Generate 2 images of a wren"], seeds=range(40), models=["seedream-4.0"])
        by_seed.update({run.request.seed: run.id for run in sweep})
        await client._send_all(sweep, concurrency=40)
        await client.wait_all(sweep, timeout=60)
        await client.aclose()
        return list(sweep), ledger

    runs, ledger = asyncio.run(go())
    assert seen_at_post == {run.id: "submitting" for run in runs}  # every row committed before its own POST
    submitting = [b for b in batches if "submitting" in b]
    assert sum(len(b) for b in submitting) == 40 and len(submitting) <= 4  # not one transaction per run
    later = [b for b in batches if "submitting" not in b]
    assert sum(len(b) for b in later) >= 80 and len(later) < sum(len(b) for b in later)  # several changes per write
    assert ledger.count(status="completed") == 40
    ledger.close()


def test_a_read_in_the_same_moment_as_a_change_sees_it(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"

    async def go() -> None:
        client = AsyncClient(emu.token, emu.base_url, retry=FAST)
        ledger = Ledger(path)
        client.use_ledger(ledger)
        run = client._prepare(seqnb.Request("seedream-4.5", "Generate 2 images of a newt", count=2, seed=4))
        await client._send(run)  # in_queue now; its write is due at the end of this turn of the loop
        assert committed_status(path, run.id) == "submitting"  # not written yet: batched
        frame = ledger.runs(ids=[run.id])  # a read writes what is due first
        assert frame["status"].tolist() == ["in_queue"] and frame["request_id"].tolist() == [run.request_id]
        assert committed_status(path, run.id) == "in_queue"
        await client.wait_all([run], timeout=30)
        assert ledger.count(status="completed") == 1
        await client.aclose()
        ledger.close()

    asyncio.run(go())


def test_a_send_cancelled_while_its_row_is_being_written_sends_nothing(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"

    async def go() -> None:
        client = AsyncClient(emu.token, emu.base_url, retry=FAST)
        ledger = Ledger(path)
        client.use_ledger(ledger)
        run = client._prepare(seqnb.Request("seedream-4.5", "Generate 2 images of a mole", count=2, seed=8))
        submits = emu.counters.submits
        sending = asyncio.create_task(client._send(run))
        await asyncio.sleep(0)  # the send waits for its batch
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        await asyncio.sleep(0.3)
        assert run.status == "failed" and "not sent" in (run.error or "")
        assert emu.counters.submits == submits
        assert ledger.runs(ids=[run.id])["status"].tolist() == ["failed"]
        await client.aclose()
        ledger.close()

    asyncio.run(go())


def test_a_finished_sweep_leaves_no_bookkeeping_behind_but_its_runs(emu: EmulatorServer, tmp_path: Path) -> None:
    """What the ledger holds is not kept twice: once a sweep has ended, the poller, the client's submit events,
    the recorder's row parts and each run's wait event are gone; the runs themselves stay (``client.runs()``)."""

    async def go() -> None:
        client = AsyncClient(emu.token, emu.base_url, retry=FAST)
        ledger = Ledger(tmp_path / "l.sqlite")
        client.use_ledger(ledger)
        sweep = client._prepare_sweep(prompts=["Generate 2 images of a vole"], seeds=range(30), models=["seedream-4.0"])
        await client._send_all(sweep, concurrency=10)
        await asyncio.gather(*(run.wait() for run in sweep[:5]))  # a few waited for one by one, too
        await client.wait_all(sweep, timeout=60)
        assert all(run.status == "completed" for run in sweep)
        poller, recorder = client._poller, client._recorder
        assert recorder is not None
        left = {
            "poller": poller.watched,
            "kinds": [k for k, runs in poller._by_kind.items() if runs],
            "submits in flight": client._sending,
            "tasks": client._tasks,
            "row parts": recorder._static,
            "unsaved": recorder.unsaved,
            "wait events": [run.id for run in sweep if run._changed is not None],
        }
        assert not any(left.values()), left
        assert len(client.runs()) == 30 and ledger.count() == 30
        await client.aclose()
        ledger.close()

    asyncio.run(go())
