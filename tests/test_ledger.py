"""The ledger: a real SQLite file, real processes, the emulator over loopback."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger
from seqnb.testing import emulator


def connected(emu: EmulatorServer, path: Path) -> seqnb.Client:
    return seqnb.connect(emu.token, emu.base_url, ledger=path)


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


def test_runs_are_written_before_their_submit_leaves(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    client = seqnb.Client(emu.token, emu.base_url)
    ledger = Ledger(path).attach(client)
    seen_in_file: list[str] = []

    def on_event(event: seqnb.RunEvent) -> None:
        if event.new == "submitting":  # the POST has not left yet: the service has seen nothing
            row = sqlite3.connect(path).execute("SELECT status FROM runs WHERE id=?", (event.run.id,)).fetchone()
            seen_in_file.append(f"{row[0] if row else 'missing'} / service saw {emu.counters.submits}")

    client.subscribe(on_event)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1)).wait(20)
    assert seen_in_file == ["submitting / service saw 0"]
    row = ledger.runs().iloc[0]
    assert row["status"] == "completed" and row["request_id"] == run.request_id and row["returned"] == 2
    assert list(ledger.images(run.id)["url"]) == run.images


def test_views_have_proper_dtypes_and_filters(emu: EmulatorServer, tmp_path: Path) -> None:
    client = connected(emu, tmp_path / "l.sqlite")
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


def test_compare_shows_only_what_differs_and_spend_totals(emu: EmulatorServer, tmp_path: Path) -> None:
    client = connected(emu, tmp_path / "l.sqlite")
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


def test_export_csv_json_and_a_clear_parquet_message(emu: EmulatorServer, tmp_path: Path) -> None:
    client = connected(emu, tmp_path / "l.sqlite")
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


def test_the_token_never_reaches_the_file(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    client = connected(emu, path)
    client.submit(seqnb.Request("seedream-4.0", "Generate 1 image of a moth", count=1)).wait(20)
    client.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert emu.token.encode() not in blob
    assert b"bytedance/seedream-4-0/sequential" in blob  # the file does hold the runs


def test_migrates_a_first_release_file(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
    conn.execute(
        "INSERT INTO runs (id, backend, base_url, model, prompt, requested, payload, status, created_at, updated_at, est_cost, currency) "
        "VALUES ('r1', 'emulator', 'http://127.0.0.1:1', 'bytedance/seedream-4-5/sequential', 'Generate 2 images of a', 2, "
        "'{\"prompt\": \"Generate 2 images of a\", \"sequential_image_generation_options\": 2}', 'completed', 1.0, 1.0, '0.08', 'USD')"
    )
    conn.commit()
    conn.close()
    ledger = Ledger(path)
    assert ledger.version == SCHEMA_VERSION == len(MIGRATIONS)
    frame = ledger.runs()
    assert frame.loc[0, "id"] == "r1" and frame.loc[0, "tags"] == "[]" and frame.loc[0, "note"] == ""
    assert pd.isna(frame.loc[0, "consistency"])  # added by migration 3
    ledger.annotate("r1", note="the good one", tags=["keeper"])
    assert ledger.runs().loc[0, "note"] == "the good one"
    sqlite3.connect(path).execute("PRAGMA user_version=99").connection.commit()
    with pytest.raises(seqnb.LedgerError, match="newer than this seqnb"):
        Ledger(path)


def test_two_processes_write_one_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    Ledger(path)
    writer = f"""
        import sys
        from seqnb.client import Backend
        from seqnb.ledger import Ledger
        from seqnb.runs import RunCore
        from seqnb import Request
        ledger = Ledger({str(path)!r})
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
    frame = Ledger(path).runs()
    assert len(frame) == 450 and set(frame["status"]) == {"in_queue"}


def test_kill_mid_sweep_then_resume_from_a_new_process(tmp_path: Path) -> None:
    """SIGKILL while runs are queued and in progress; a new process resumes; nothing is submitted twice."""
    path = tmp_path / "l.sqlite"
    with emulator(workers=2, queue_wait=0.1, service_time=1.2) as emu:
        first = python(
            f"""
            import time, seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={str(path)!r})
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
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={str(path)!r})
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


def test_resume_marks_forgotten_ids_lost_and_in_flight_submits_unknown(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with emulator(queue_wait=30) as emu:
        client = connected(emu, path)
        run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a gull", count=2, seed=1))
        while run.status != "in_queue":
            time.sleep(0.01)
        conn = sqlite3.connect(path)  # a session that died mid-submit, and one that died before sending
        for rid, status in (("s1", "submitting"), ("c1", "created")):
            conn.execute(
                "INSERT INTO runs (id, backend, base_url, model, prompt, requested, payload, status, created_at, updated_at) "
                "SELECT ?, backend, base_url, model, prompt, requested, payload, ?, created_at, updated_at FROM runs WHERE id=?",
                (rid, status, run.id),
            )
        conn.commit()
        client.close()  # this session ends: its run in flight may be taken over
        emu.state.restart()  # the service forgot its queue
        fresh = connected(emu, path)
        assert fresh.ledger is not None
        resumed = fresh.resume()
        fresh.wait_all(resumed, timeout=20)
        by_id = fresh.ledger.runs().set_index("id")["status"]
        assert by_id[run.id] == "lost" and by_id["s1"] == "unknown" and by_id["c1"] == "failed"
        assert emu.counters.submits == 1
        assert fresh.resume() == []  # nothing left to pick up; a second resume changes nothing


def test_rerun_with_a_new_seed_links_the_parent(emu: EmulatorServer, tmp_path: Path) -> None:
    client = connected(emu, tmp_path / "l.sqlite")
    parent = client.submit(
        seqnb.Request("seedream-4.0", "Generate 2 images of a crab", count=2, seed=1, optimize="standard")
    ).wait(20)
    assert client.ledger is not None
    child = client.rerun(parent, seed=2).wait(20)
    assert child.status == "completed" and child.request.seed == 2
    assert child.request.get("optimize") == "standard"
    frame = client.ledger.runs().set_index("id")
    assert frame.loc[child.id, "parent_id"] == parent.id and pd.isna(frame.loc[parent.id, "parent_id"])


def test_cli_ledger_prints_and_exports(emu: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    client = connected(emu, path)
    client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a wren", count=2, seed=8)).wait(20)
    client.close()
    shown = subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "ledger", "--path", str(path)], capture_output=True, text=True, check=True
    )
    assert "1 runs" in shown.stdout and "completed" in shown.stdout and "charged" in shown.stdout
    subprocess.run(
        [sys.executable, "-m", "seqnb.cli", "ledger", "--path", str(path), "--export", str(tmp_path / "x.csv")],
        check=True,
        capture_output=True,
    )
    assert len(pd.read_csv(tmp_path / "x.csv")) == 1
