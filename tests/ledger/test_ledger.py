"""The ledger on both stores: a real SQLite file and a real PostgreSQL database, real processes, the emulator over loopback.

Every test takes ``target`` and runs twice, once per store (see ``tests/postgres.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import seqnb
from seqnb.api.backend import Backend
from seqnb.emulator import EmulatorServer, ManualClock
from seqnb.ledger.facade import Ledger
from seqnb.ledger.recorder import run_row
from seqnb.ledger.schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION, run_values
from seqnb.testing import emulator
from tests import postgres
from tests.postgres import Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: each test runs on SQLite, then PostgreSQL


def connected(emu: EmulatorServer, target: Target) -> seqnb.Client:
    return seqnb.connect(emu.token, emu.base_url, ledger=target.url)


def python(code: str, **kw: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_TOKEN"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )  # type: ignore[call-overload]


def test_runs_are_written_before_their_submit_leaves(emu: EmulatorServer, target: Target) -> None:
    client = seqnb.Client(emu.token, emu.base_url)
    ledger = Ledger(target.url)
    client.use_ledger(ledger)
    seen_in_file: list[str] = []

    def on_event(event: seqnb.RunEvent) -> None:
        if event.new == "submitting":  # the POST has not left yet: the service has seen nothing
            rows = target.execute("SELECT status FROM runs WHERE id=?", (event.run.id,))
            seen_in_file.append(f"{rows[0][0] if rows else 'missing'} / service saw {emu.counters.submits}")

    client.subscribe(on_event)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1)).wait(20)
    assert seen_in_file == ["submitting / service saw 0"]
    row = ledger.runs().iloc[0]
    assert row["status"] == "completed" and row["request_id"] == run.request_id and row["returned"] == 2
    assert list(ledger.images(run.id)["url"]) == run.images


def test_views_have_proper_dtypes_and_filters(emu: EmulatorServer, target: Target) -> None:
    client = connected(emu, target)
    runs = client.sweep(
        prompts=["Generate 2 images of a 100% cotton_shirt", "Generate 3 images of a dog"],
        seeds=[1, 2],
        models=["seedream-4.0", "seedream-4.5"],
        quiet=True,
    )
    client.wait_all(runs, timeout=60)
    ledger = client.ledger
    assert ledger is not None
    frame = ledger.runs()
    assert len(frame) == 8
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["model"].dtype == "category" and frame["status"].dtype == "category"
    assert str(frame["seed"].dtype) == "Int64" and str(frame["returned"].dtype) == "Int64"
    assert str(frame["prompt"].dtype) == "string" and frame["est_cost"].dtype == "float64"
    assert (frame["run_s"].dropna() >= 0).all()
    assert len(ledger.runs(model="seedream-4.0")) == 4
    assert len(ledger.runs(status="completed", sweep=runs.id)) == 8
    assert len(ledger.runs(text="100% cotton_")) == 4 and len(ledger.runs(text="%")) == 4  # LIKE wildcards are literal
    assert len(ledger.runs(since=pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5))) == 8
    assert len(ledger.runs(until=pd.Timestamp("2000-01-01"))) == 0
    assert len(ledger.runs(limit=3)) == 3


def test_compare_shows_only_what_differs_and_spend_totals(emu: EmulatorServer, target: Target) -> None:
    client = connected(emu, target)
    runs = client.sweep(prompts=["Generate 3 images of an owl"], seeds=[5, 6, 7], models=["seedream-4.5"], quiet=True)
    client.wait_all(runs, timeout=60)
    assert client.ledger is not None
    table = client.ledger.compare(runs)
    assert "seed" in table.columns and "model" not in table.columns and "prompt" not in table.columns
    assert list(table["status"]) == ["completed"] * 3
    assert client.ledger.compare(runs.id).shape == table.shape
    spend = client.ledger.spend("model")
    assert spend.loc[0, "runs"] == 3 and spend.loc[0, "images"] == 9
    assert spend.loc[0, "simulated"] == pytest.approx(0.36) and spend.loc[0, "in_doubt"] == 0
    assert spend.loc[0, "charged"] == 0  # emulator runs are simulated: nothing was charged
    assert set(client.ledger.spend(["day", "status"]).columns) >= {"day", "status", "charged"}
    with pytest.raises(ValueError, match="spend"):
        client.ledger.spend("colour")


def test_spend_reads_only_its_columns_and_totals_what_the_full_rows_total(emu: EmulatorServer, target: Target) -> None:
    """spend() reads a slim query; its totals are those of spend over every column of runs(), by any key."""
    from seqnb.ledger.frames import SPEND_KEYS, spend

    client = connected(emu, target)
    runs = client.sweep(prompts=["Generate 2 images of a wren", "Generate 3 images of a jay"], seeds=[1, 2], quiet=True)
    client.wait_all(runs, timeout=60)
    assert client.ledger is not None
    target.execute("UPDATE runs SET status='unknown' WHERE id=?", (runs[0].id,))  # in doubt
    target.execute("UPDATE runs SET est_cost='not money' WHERE id=?", (runs[1].id,))  # an odd value: no total
    target.execute("UPDATE runs SET backend='runcomfy' WHERE id=?", (runs[2].id,))  # charged
    for by in [*SPEND_KEYS, ["model", "status"], ["user", "host", "backend"]]:
        slim = client.ledger.spend(by)
        full = spend(client.ledger.runs(), by)
        pd.testing.assert_frame_equal(slim, full, check_categorical=False, obj=f"spend({by!r})")
    paged = client.ledger.spend("status", limit=2, offset=1)
    assert paged["runs"].sum() == 2
    user = client.ledger.runs()["user"].iloc[0]
    assert client.ledger.spend("model", who=user)["runs"].sum() == 4
    assert client.ledger.spend("model", who="nobody-else").empty


def test_export_csv_json_and_a_clear_parquet_message(emu: EmulatorServer, target: Target, tmp_path: Path) -> None:
    client = connected(emu, target)
    client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a bee", count=2, seed=3)).wait(20)
    assert client.ledger is not None
    assert len(pd.read_csv(client.ledger.export(tmp_path / "runs.csv"))) == 1
    records = json.loads((client.ledger.export(tmp_path / "runs.json")).read_text())
    assert records[0]["status"] == "completed" and records[0]["seed"] == 3
    try:
        import pyarrow  # noqa: F401

        assert len(pd.read_parquet(client.ledger.export(tmp_path / "runs.parquet"))) == 1
    except ImportError:
        with pytest.raises(seqnb.LedgerError, match="pip install pyarrow"):
            client.ledger.export(tmp_path / "runs.parquet")
    with pytest.raises(seqnb.LedgerError, match=r"\.csv, \.json or \.parquet"):
        client.ledger.export(tmp_path / "runs.xlsx")


def test_the_token_never_reaches_the_store(emu: EmulatorServer, target: Target) -> None:
    client = connected(emu, target)
    client.submit(seqnb.Request("seedream-4.0", "Generate 1 image of a moth", count=1)).wait(20)
    client.close()
    blob = target.dump()
    assert emu.token.encode() not in blob
    assert b"bytedance/seedream-4-0/sequential" in blob  # the file does hold the runs


def test_a_run_row_is_built_by_column_name_and_has_exactly_the_run_columns() -> None:
    """The row names every column of ``RUN_COLUMNS`` once; a column missing from it, or one too many, is refused."""
    run = seqnb.AsyncRun(request=seqnb.Request("seedream-4.5", "Generate 2 images of a lynx", count=2, seed=9))
    row = run_row(run, Backend("emulator", "http://127.0.0.1:1", "test"), "se-1", "created", "here")
    assert sorted(row) == sorted(RUN_COLUMNS)  # every column once, by name (run_values puts them in order)
    values = run_values(row)
    assert values[RUN_COLUMNS.index("seed")] == 9 and values[RUN_COLUMNS.index("status")] == "created"
    with pytest.raises(ValueError, match=r"missing \['note'\], extra \[\]"):
        run_values({k: v for k, v in row.items() if k != "note"})
    with pytest.raises(ValueError, match=r"missing \[\], extra \['colour'\]"):
        run_values({**row, "colour": "red"})


def test_migrates_a_first_release_ledger(target: Target) -> None:
    store = target.store()
    assert store.migrate(MIGRATIONS, 1) == 0  # the first release's schema, as it made it
    store.close()
    target.execute(
        "INSERT INTO runs (id, backend, base_url, model, prompt, requested, payload, status, created_at, updated_at, est_cost, currency) "
        "VALUES ('r1', 'emulator', 'http://127.0.0.1:1', 'bytedance/seedream-4-5/sequential', 'Generate 2 images of a', 2, "
        "'{\"prompt\": \"Generate 2 images of a\", \"sequential_image_generation_options\": 2}', 'completed', 1.0, 1.0, '0.08', 'USD')"
    )
    ledger = Ledger(target.url)
    assert ledger.version == SCHEMA_VERSION == len(MIGRATIONS)
    frame = ledger.runs()
    assert frame.loc[0, "id"] == "r1" and frame.loc[0, "tags"] == "" and frame.loc[0, "note"] == ""
    assert pd.isna(frame.loc[0, "consistency"])  # added by migration 3
    ledger.annotate("r1", note="the good one", tags=["keeper"])
    assert ledger.runs().loc[0, "note"] == "the good one" and ledger.runs().loc[0, "tags"] == "keeper"  # a mark
    newer = target.store()
    newer.set_version(99)
    newer.close()
    with pytest.raises(seqnb.LedgerError, match="newer than this seqnb"):
        Ledger(target.url)


def test_a_note_written_on_a_run_in_flight_survives_its_later_changes(target: Target) -> None:
    clock = ManualClock()  # the run ends only when the test moves the clock: it changes after the note
    with emulator(workers=1, queue_wait=0, service_time=1.0, clock=clock) as emu:
        client = connected(emu, target)
        assert client.ledger is not None
        run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a heron", count=2, seed=3))
        deadline = time.monotonic() + 20
        while run.status != "in_progress":
            assert time.monotonic() < deadline, run.summary()
            time.sleep(0.05)
        client.ledger.annotate(run.id, note="the keeper")
        assert client.cancel(run) == "not_cancellable"  # the run says something of its own, written with its row
        clock.advance(1.5)
        assert run.wait(20).status == "completed"
        client.settle()
        note = client.ledger.runs(ids=[run.id]).loc[0, "note"]
        assert note.startswith("the keeper; ") and "already running" in note
        assert run.note == note  # the run and its row say the same
        client.close()


def test_three_processes_write_one_ledger_at_once(target: Target) -> None:
    Ledger(target.url)
    writer = f"""
        import sys
        from seqnb.api.backend import Backend
        from seqnb.ledger.facade import Ledger
        from seqnb.runs.run import RunCore
        from seqnb import Request
        ledger = Ledger({target.url!r})
        backend = Backend("emulator", "http://127.0.0.1:1", "test")
        for i in range(150):
            run = RunCore(Request("seedream-4.5", "Generate 2 images of a", count=2, seed=i))
            ledger.record(run, backend)
            run.status = "in_queue"
            ledger.record(run, backend)
        print("ok")
    """
    procs = [python(writer) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    frame = Ledger(target.url).runs()
    assert len(frame) == 450 and set(frame["status"]) == {"in_queue"}


@pytest.mark.slow
def test_kill_mid_sweep_then_resume_from_a_new_process(target: Target) -> None:
    """SIGKILL while runs are queued and in progress; a new process resumes; nothing is submitted twice."""
    path = target.url
    with emulator(workers=2, queue_wait=0.1, service_time=1.2) as emu:
        first = python(
            f"""
            import time, seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={path!r})
            runs = client.sweep(prompts=["Generate 2 images of a kite over dunes"], seeds=range(10), quiet=True)
            while any(r.status in ("created", "submitting") for r in runs):
                time.sleep(0.02)
            print("SUBMITTED", flush=True)
            time.sleep(600)
            """
        )
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "SUBMITTED"
        time.sleep(0.3)
        now = emu.state.queue.advance()
        states = {job.state(now) for job in emu.state.queue.jobs.values()}
        assert {"in_queue", "in_progress"} <= states
        first.send_signal(signal.SIGKILL)
        first.wait(10)

        pending = Ledger(path).pending()
        assert len(pending) >= 6 and set(pending["status"]) <= {"in_queue", "in_progress"}

        second = python(
            f"""
            import seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={path!r})
            runs = client.resume()
            client.wait_all(runs, timeout=90)
            print(len(runs), sorted({{r.status for r in runs}}))
            """
        )
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert out.split()[0] == str(len(pending))  # exactly the pending runs were resumed
        frame = Ledger(path).runs()
        assert len(frame) == 10 and set(frame["status"]) == {"completed"}
        images = Ledger(path).images()
        assert len(images) == 20 and images["url"].notna().all()
        assert emu.counters.submits == 10  # nothing was submitted twice


def test_resume_marks_forgotten_ids_lost_and_in_flight_submits_unknown(target: Target) -> None:
    with emulator(queue_wait=30) as emu:
        client = connected(emu, target)
        run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a gull", count=2, seed=1))
        while run.status != "in_queue":
            time.sleep(0.01)
        # a session that died mid-submit, and one that died before sending (rows of an older seqnb: no owner)
        for rid, status in (("s1", "submitting"), ("c1", "created")):
            target.execute(
                "INSERT INTO runs (id, backend, base_url, model, prompt, requested, payload, status, created_at, updated_at) "
                "SELECT ?, backend, base_url, model, prompt, requested, payload, ?, created_at, updated_at FROM runs WHERE id=?",
                (rid, status, run.id),
            )
        client.close()  # this session ends: its run in flight may be taken over
        emu.state.restart()  # the service forgot its queue
        fresh = connected(emu, target)
        assert fresh.ledger is not None
        resumed = fresh.resume()
        fresh.wait_all(resumed, timeout=20)
        by_id = fresh.ledger.runs().set_index("id")["status"]
        assert by_id[run.id] == "lost" and by_id["s1"] == "unknown" and by_id["c1"] == "failed"
        assert emu.counters.submits == 1
        assert fresh.resume() == []  # nothing left to pick up; a second resume changes nothing


def test_rerun_with_a_new_seed_links_the_parent(emu: EmulatorServer, target: Target) -> None:
    client = connected(emu, target)
    parent = client.submit(
        seqnb.Request("seedream-4.0", "Generate 2 images of a crab", count=2, seed=1, optimize="standard")
    ).wait(20)
    assert client.ledger is not None
    child = client.rerun(parent, seed=2).wait(20)
    assert child.status == "completed" and child.request.seed == 2
    assert child.request.get("optimize") == "standard"
    frame = client.ledger.runs().set_index("id")
    assert frame.loc[child.id, "parent_id"] == parent.id and pd.isna(frame.loc[parent.id, "parent_id"])


def test_cli_ledger_prints_and_exports(emu: EmulatorServer, target: Target, tmp_path: Path) -> None:
    path = target.url
    client = connected(emu, target)
    client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a wren", count=2, seed=8)).wait(20)
    client.close()
    shown = subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "ledger", "--path", path], capture_output=True, text=True, check=True
    )
    assert "1 runs" in shown.stdout and "completed" in shown.stdout and "charged" in shown.stdout
    subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "ledger", "--path", path, "--export", str(tmp_path / "x.csv")],
        check=True,
        capture_output=True,
    )
    assert len(pd.read_csv(tmp_path / "x.csv")) == 1
