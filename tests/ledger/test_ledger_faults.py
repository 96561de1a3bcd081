"""The ledger under failing disks and odd rows: write-or-refuse before a submit, kept-and-retried after, sessions on resume.

Full and read-only files are made by SQLite itself (``max_page_count``, ``query_only``) on the
ledger's own connections (so these cases are SQLite's; the team store's are in ``test_ledger_team``); a corrupt file is a real file with a page overwritten.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.images.cache import ImageCache
from seqnb.images.share import export_ledger
from seqnb.ledger.facade import Ledger
from seqnb.ledger.stores.sqlite import SqliteStore
from seqnb.testing import emulator


class DiskTrouble:
    """Turns the ledger file full or read-only for every connection the ledger uses, from the next operation on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mode: str | None = None
        original = SqliteStore.connection

        def connect(store: SqliteStore) -> sqlite3.Connection:
            conn: sqlite3.Connection = original(store)
            if self.mode == "full":
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={pages}")
            elif self.mode == "readonly":
                conn.execute("PRAGMA query_only=ON")
            else:
                conn.execute("PRAGMA query_only=OFF")
                conn.execute("PRAGMA max_page_count=1073741823")
            return conn

        monkeypatch.setattr(SqliteStore, "connection", connect)


@pytest.fixture
def trouble(monkeypatch: pytest.MonkeyPatch) -> DiskTrouble:
    return DiskTrouble(monkeypatch)


@pytest.fixture
def slow_emu() -> Iterator[EmulatorServer]:
    with emulator(queue_wait=0.3, base_seconds=0.2, seconds_per_image=0.05) as server:
        yield server


def connected(emu: EmulatorServer, path: Path) -> seqnb.Client:
    return seqnb.connect(emu.token, emu.base_url, ledger=path, download=False)


def until(check: object, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.01)


def corrupt(path: Path) -> None:
    """Overwrite the runs table's root page with garbage, as a bad sector in the middle of the file would."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='runs'").fetchone()[0]
    with path.open("r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(b"\xde\xad\xbe\xef" * (size // 4))


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("full", "the disk is full"),
        ("readonly", "read-only"),
        ("corrupt", "corrupt"),
        ("seed", "beyond any 64-bit integer"),
        ("float seed", "beyond any 64-bit integer"),
        ("surrogate", "lone surrogate"),
    ],
)
def test_a_run_the_ledger_cannot_record_is_never_sent(
    fault: str, cause: str, emu: EmulatorServer, tmp_path: Path, trouble: DiskTrouble
) -> None:
    path = tmp_path / "l.sqlite"
    client = connected(emu, path)
    request = seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1)
    prompt = "Generate 2 images of a fox"
    seeds: list[int | float] = [5, 6, 7]
    if fault in ("full", "readonly"):
        trouble.mode = fault
        # a row larger than a page needs new pages, which a full disk cannot give
        prompt = "Generate 2 images of a fox " + "🦊" * 560
        request = request.replace(prompt=prompt)
    elif fault == "corrupt":
        client.submit(request.replace(seed=2)).wait(20)
        client.close()
        corrupt(path)
        client = connected(emu, path)  # opens fine: the damage is in the middle of the file
    elif fault == "seed":
        request = request.replace(seed=2**63)
        seeds = [5, 2**63]
    elif fault == "float seed":
        request = request.replace(seed=1e20)
        seeds = [5, 1e20]
    elif fault == "surrogate":
        prompt = "Generate 2 images of a \ud800 fox"
        request = request.replace(prompt=prompt)
    submits = emu.counters.submits
    # a disk fault is the ledger's to refuse; a value no ledger or API takes, the validation's (before the ledger)
    refusal = seqnb.LedgerError if fault in ("full", "readonly", "corrupt") else seqnb.RequestInvalid
    with pytest.raises(refusal, match=cause) as caught:
        client.submit(request)
    assert str(path) in str(caught.value) or refusal is seqnb.RequestInvalid  # it names the file, or the field
    with pytest.raises(refusal, match=cause):
        client.sweep(prompts=[prompt], seeds=seeds, quiet=True)
    time.sleep(0.2)
    assert emu.counters.submits == submits  # nothing left for the service
    assert all(r.status in ("created", "failed") for r in client.runs())
    trouble.mode = None
    if fault in ("full", "readonly"):
        assert len(Ledger(path).runs()) == 0  # and nothing half-written


def test_a_ledger_that_fills_up_mid_sweep_sends_nothing(
    emu: EmulatorServer, tmp_path: Path, trouble: DiskTrouble
) -> None:
    path = tmp_path / "l.sqlite"
    client = connected(emu, path)
    client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a fox", count=1, seed=1)).wait(20)
    ledger = client.ledger
    assert ledger is not None
    with sqlite3.connect(path) as conn:  # room for a few more rows, not for a 300-run sweep
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    original = SqliteStore.connection

    def nearly_full(self: SqliteStore) -> sqlite3.Connection:
        conn: sqlite3.Connection = original(self)
        conn.execute(f"PRAGMA max_page_count={pages + 3}")
        return conn

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SqliteStore, "connection", nearly_full)
        with pytest.raises(seqnb.LedgerError, match="the disk is full"):
            client.sweep(prompts=["Generate 1 image of a heron"], seeds=range(300), quiet=True)
    time.sleep(0.3)
    assert emu.counters.submits == 1
    statuses = {r.status for r in client.runs()[1:]}
    assert statuses == {"failed"}  # every run of the sweep says "not sent", and none of them was
    assert all("not sent" in (r.error or "") for r in client.runs()[1:])


def test_later_write_failures_are_kept_shown_and_retried_and_never_called_not_sent(
    slow_emu: EmulatorServer, tmp_path: Path, trouble: DiskTrouble
) -> None:
    path = tmp_path / "l.sqlite"
    client = connected(slow_emu, path)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a hare", count=2, seed=4))
    until(lambda: run.request_id is not None)
    trouble.mode = "readonly"  # the file turns read-only while the run is queued
    run.wait(20)
    assert run.status == "completed"  # the run itself goes on
    ledger = client.ledger
    assert ledger is not None
    assert "NOT YET IN THE LEDGER" in run.note and "read-only" in run.note
    health = ledger.health()
    assert health is not None and "1 run(s) not yet written" in health
    row = sqlite3.connect(path).execute("SELECT status FROM runs WHERE id=?", (run.id,)).fetchone()
    assert row[0] in ("submitting", "in_queue")  # stale, but never "created": it was sent
    with pytest.raises(seqnb.LedgerError, match="read-only"):
        ledger.flush()

    # the session dies before the disk is back: another session resumes from the stale row
    client.aio._poller.unwatch(run.aio)
    recorder = client.aio._recorder
    assert recorder is not None
    trouble.mode = None
    ledger.end_session(recorder.session.id)
    fresh = connected(slow_emu, path)
    assert fresh.ledger is not None
    resumed = fresh.resume()
    fresh.wait_all(resumed, timeout=20)
    status = fresh.ledger.runs(ids=[run.id]).iloc[0]["status"]
    assert status in ("completed", "unknown")  # watched again, or in doubt: never "failed: not sent"

    ledger.flush()  # the disk is back: the first session's backlog goes in
    assert ledger.health() is None and "NOT YET" not in run.note


def test_resume_leaves_the_runs_of_a_live_session_alone(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with emulator(queue_wait=30) as emu:
        owner = connected(emu, path)
        queued = owner.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a lynx", count=2, seed=1))
        until(lambda: queued.status == "in_queue")
        unsent = owner.aio._prepare(seqnb.Request("seedream-4.5", "Generate 2 images of a lynx", count=2, seed=2))
        other = connected(emu, path)  # a second kernel on the same ledger
        assert other.resume() == []
        assert unsent.status == "created" and queued.status == "in_queue"  # untouched, not called "not sent"
        frame = Ledger(path).runs().set_index("id")
        assert frame.loc[unsent.id, "status"] == "created" and frame.loc[queued.id, "status"] == "in_queue"

        owner.close()  # the first session ends: now its runs may be taken over, once
        taken = other.resume()
        assert [r.id for r in taken] == [queued.id]
        assert other.run(unsent.id).status == "failed"
        assert other.resume() == []  # a second resume adopts nothing twice
        third = connected(emu, path)
        assert third.resume() == []  # and no other session takes what a live one took
        assert emu.counters.submits == 1


def test_resume_takes_over_from_a_killed_process_but_not_from_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with emulator(queue_wait=30) as emu:
        code = f"""
            import time, seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={str(path)!r}, download=False)
            run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a seal", count=2, seed=3))
            while client.ledger.count(status="in_queue") < 1:  # the queued row written, not only seen
                time.sleep(0.01)
            print("QUEUED", flush=True)
            time.sleep(600)
        """
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "QUEUED"
            here = connected(emu, path)
            assert here.resume() == []  # the other process is alive and watching
            child.kill()
            child.wait(10)
            taken = here.resume()  # its process is gone: take over at once
            assert len(taken) == 1 and taken[0].status == "in_queue"
            assert emu.counters.submits == 1
        finally:
            child.kill()


def test_odd_rows_never_break_the_views(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    client = connected(emu, path)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a yak", count=2, seed=1)).wait(20)
    with sqlite3.connect(path) as conn:  # what another tool, or an older seqnb, may have left
        conn.execute(
            "UPDATE runs SET server_created_at='last tuesday', server_finished_at='1732000000', seed='big' WHERE id=?",
            (run.id,),
        )
    ledger = Ledger(path)
    frame = ledger.runs()
    assert len(frame) == 1 and frame["server_created_at"].isna().all()
    assert len(ledger.spend("day")) == 1
    assert ledger.export(tmp_path / "runs.csv").exists()
    done = subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "ledger", "--path", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("make", "cause"), [("directory", "cannot be opened"), ("garbage", "corrupt")])
def test_a_ledger_that_cannot_open_says_why(make: str, cause: str, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(seqnb.LedgerError, match=cause) as caught:
        Ledger(path)
    assert str(path) in str(caught.value)
    if make == "garbage":
        assert path.read_bytes() == b"this is not a database" * 100  # left untouched


def test_a_seedless_run_gets_a_fresh_seed_sent_and_recorded_unless_the_default_is_asked(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    client = connected(emu, tmp_path / "l.sqlite")
    one = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a kiwi", count=1)).wait(20)
    two = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a kiwi", count=1)).wait(20)
    model = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a kiwi", count=1, seed="default")).wait(20)
    assert one.request.sent_seed is not None and one.request.sent_seed != two.request.sent_seed
    assert "seed" not in model.request.payload() and model.request.seed == 41722289
    assert client.ledger is not None
    frame = client.ledger.runs().set_index("id")
    assert frame.loc[one.id, "seed"] == one.request.sent_seed and pd.isna(frame.loc[one.id, "default_seed"])
    assert pd.isna(frame.loc[model.id, "seed"]) and frame.loc[model.id, "default_seed"] == 41722289


def test_the_ledger_itself_refuses_values_that_do_not_fit(tmp_path: Path) -> None:
    """Defence in depth: a run that skipped validation still cannot put a value the file cannot hold."""
    from seqnb.api.backend import Backend
    from seqnb.runs.run import RunCore

    ledger = Ledger(tmp_path / "l.sqlite")
    backend = Backend("emulator", "http://127.0.0.1:1", "test")
    big = RunCore(seqnb.Request("seedream-4.5", "Generate 1 image of a fox", count=1, seed=2**64))
    with pytest.raises(seqnb.LedgerError, match="64-bit integer"):
        ledger.record(big, backend)
    odd = RunCore(seqnb.Request("seedream-4.5", "Generate 1 image of a \udc00 fox", count=1, seed=1))
    with pytest.raises(seqnb.LedgerError, match="lone surrogate"):
        ledger.record(odd, backend)
    assert ledger.count() == 0


def test_at_exit_the_background_loop_stops_with_no_task_left_pending(tmp_path: Path) -> None:
    """After a resume, exiting the interpreter cancels the poller and stops seqnb's loop thread cleanly."""
    path = tmp_path / "l.sqlite"
    with emulator(queue_wait=30) as emu:
        code = f"""
            import atexit, threading, time

            def last():  # registered first, so it runs after seqnb's own exit handler
                for thread in threading.enumerate():
                    if thread.name == "seqnb-loop":
                        thread.join(3)
                alive = [t.name for t in threading.enumerate() if t.name == "seqnb-loop" and t.is_alive()]
                print("loop thread alive at exit:", alive, flush=True)

            atexit.register(last)
            import seqnb
            first = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={str(path)!r}, download=False)
            run = first.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a cat", count=2, seed=1))
            while run.status != "in_queue":
                time.sleep(0.01)
            first.close()
            second = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={str(path)!r})
            print(len(second.resume()), flush=True)
        """
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1", "loop thread alive at exit: []"]  # resumed one run; the loop stopped
    assert "Task was destroyed" not in done.stderr and "Traceback" not in done.stderr


def test_image_rows_a_failing_disk_refused_are_kept_shown_retried_and_all_written_once_it_is_back(
    emu: EmulatorServer, tmp_path: Path, trouble: DiskTrouble
) -> None:
    path = tmp_path / "l.sqlite"
    client = seqnb.connect(emu.token, emu.base_url, ledger=path, download=ImageCache(tmp_path / "cache"))
    ledger = client.ledger
    assert ledger is not None
    runs = client.sweep(prompts=["Generate 2 images of a stoat"], seeds=range(6), quiet=True)
    until(lambda: all(r.request_id for r in runs))  # every submit left, and was written as leaving
    trouble.mode = "readonly"  # the file turns read-only while the runs are in flight
    client.wait_all(runs, timeout=60)
    client.settle(60)  # every image downloaded, and refused by the ledger
    assert {r.status for r in runs} == {"completed"}
    health = ledger.health()
    assert health is not None and "the image rows of 6 run(s) not yet written" in health and "read-only" in health
    assert all("NOT YET IN THE LEDGER" in r.note for r in runs)
    with pytest.raises(seqnb.LedgerError, match="read-only"):
        ledger.flush()

    trouble.mode = None  # the disk is back: the next change of any run writes what was kept
    client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a stoat", count=1, seed=9)).wait(30)
    client.settle(30)
    rows = sqlite3.connect(path).execute("SELECT run_id, idx, state, path, sha256 FROM images").fetchall()
    assert len(rows) == 6 * 2 + 1 and {state for _, _, state, _, _ in rows} == {"cached"}
    assert all(Path(p).exists() and sha for _, _, _, p, sha in rows)  # every frame, with its file and its hash
    assert ledger.health() is None and not any("NOT YET" in r.note for r in runs)


def test_export_finds_in_the_image_cache_the_frames_whose_rows_missed_them(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    client = seqnb.connect(emu.token, emu.base_url, ledger=path)  # images into $SEQNB_CACHE, as the export reads
    runs = client.sweep(prompts=["Generate 2 images of a marten"], seeds=range(2), quiet=True)
    client.wait_all(runs, timeout=30)
    client.settle(30)
    client.close()
    with sqlite3.connect(path) as conn:  # what an outage left in an older seqnb: the URLs, nothing of the files
        conn.execute("UPDATE images SET path=NULL, sha256=NULL, width=NULL, height=NULL, bytes=NULL, state='remote' "
                     "WHERE run_id=?", (runs[0].id,))  # fmt: skip
        # and a cache that moved since its files were recorded, at URLs it no longer knows: the hashes still say
        conn.execute("UPDATE images SET path='/moved/away.png', url='https://gone.example/x.png' WHERE run_id=?",
                     (runs[1].id,))  # fmt: skip
    done = export_ledger(Ledger(path), tmp_path / "out")  # the command line's export (seqnb export)
    written = [*done.images, done.table]
    assert len([p for p in written if p.suffix == ".png"]) == 4  # every frame, none "had no image to write"
