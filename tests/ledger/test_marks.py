"""Marks on both stores: ratings, picks, tags and comments written at once, read back as state, frames and filters.

Every test that takes ``target`` runs twice, once on a real SQLite file and once on a real PostgreSQL
database (``tests/postgres.py``); runs come from the emulator over loopback.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.ledger.facade import Ledger
from seqnb.ledger.marks import RunMarks
from seqnb.ledger.sessions import user_here
from seqnb.ledger.stores import SqliteStore
from tests import postgres
from tests.postgres import Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: each test runs on SQLite, then PostgreSQL


def sweep(emu: EmulatorServer, target: Target, seeds: int = 3) -> tuple[seqnb.Client, list[seqnb.Run]]:
    client = seqnb.connect(emu.token, emu.base_url, ledger=target.url, download=False)
    runs = client.sweep(prompts=["Generate 3 images of a lighthouse"], seeds=list(range(seeds)), quiet=True)
    client.wait_all(runs, timeout=60)
    return client, list(runs)


def test_run_methods_write_marks_the_ledger_reads_back(emu: EmulatorServer, target: Target) -> None:
    client, (a, b, c) = sweep(emu, target)
    a.rate(4)
    a.rate(5, frame=2)
    a.pick()
    a.tag("hero", "dusk")
    a.comment("the light on the water")
    b.reject()
    b.rate(2)
    assert a.marks == RunMarks(
        rating=4, frame_ratings={2: 5}, verdict="picked", tags=("dusk", "hero"), comment="the light on the water"
    )
    a.untag("dusk")
    a.rate(0, frame=2)
    a.rate(3)  # the latest mark of each slot wins
    assert a.marks == RunMarks(rating=3, verdict="picked", tags=("hero",), comment="the light on the water")
    state = client.ledger.marks_of([a.id, b.id, c.id])
    assert state[b.id] == RunMarks(rating=2, verdict="rejected") and state[c.id] == RunMarks() and not state[c.id]
    log = client.ledger.marks([a.id])
    assert list(log["kind"]) == ["rating", "rating", "verdict", "tag", "tag", "comment", "untag", "rating", "rating"]
    assert log["id"].is_monotonic_increasing and str(log["at"].dtype) == "datetime64[ns, UTC]"
    assert log.loc[1, "frame"] == 2 and pd.isna(log.loc[0, "frame"])
    assert set(log["by"]) == {user_here()}
    client.close()


def test_ledger_runs_has_the_frame_ratings_as_they_stand(emu: EmulatorServer, target: Target) -> None:
    client, (a, b, c) = sweep(emu, target)
    a.rate(5, frame=0)
    a.rate(4, frame=2)
    a.rate(2, frame=1)
    a.rate(0, frame=1)  # cleared
    b.rate(3, frame=1)
    b.rate(1, frame=1)  # the latest wins
    client.ledger.mark(c.id, frame=0, rating=5, by="someone-else")  # not the reader's
    frame = client.ledger.runs().set_index("id")
    assert str(frame["frame_ratings"].dtype) == "string"
    assert frame.loc[a.id, "frame_ratings"] == "1:5 3:4"  # numbered from 1, as the views show frames
    assert frame.loc[b.id, "frame_ratings"] == "2:1" and frame.loc[c.id, "frame_ratings"] == ""
    assert client.ledger.runs(marks_by="*").set_index("id").loc[c.id, "frame_ratings"] == "1:5"
    page = client.ledger.runs(limit=1, offset=2)  # a page reads only its runs' ratings
    assert list(page["frame_ratings"]) == ["1:5 3:4"]
    client.close()


def test_bad_marks_are_refused_naming_the_field_and_write_nothing(emu: EmulatorServer, target: Target) -> None:
    client, (run, *_) = sweep(emu, target, seeds=1)
    ledger = client.ledger
    assert ledger is not None
    cases = [
        (dict(rating=6), "rating=6: give 1 to 5 stars, or 0"),
        (dict(rating=True), "rating=True"),
        (dict(verdict="maybe"), "verdict='maybe'"),
        (dict(rating=3, frame=3), "frame=3: run .* has 3 frame"),
        (dict(rating=3, frame=-1), "frame=-1"),
        (dict(verdict="picked", frame=0), "frame= goes with rating= only"),
        (dict(tags=["a,b"]), "is not a tag"),
        (dict(tags=[""]), "is not a tag"),
        (dict(), "nothing to mark"),
        (dict(comment="x" * 10_001), "at most 10,000 characters"),
        (dict(comment=3), "comment: give text"),
        (dict(rating=3, by="*"), "by='\\*'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(seqnb.SettingInvalid, match=message):
            ledger.mark(run.id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(seqnb.SettingInvalid, match="run_id='r-nope': no such run"):
        ledger.mark("r-nope", rating=3)
    with pytest.raises(ValueError, match="rating=9"):  # SettingInvalid is a ValueError
        run.rate(9)
    assert ledger.marks(by="*").empty
    client.close()


def test_each_persons_marks_are_their_own(emu: EmulatorServer, target: Target) -> None:
    client, (a, *_) = sweep(emu, target)
    ledger = client.ledger
    assert ledger is not None
    ledger.mark(a.id, rating=5, verdict="picked", by="alice")
    ledger.mark(a.id, rating=2, by="bob")
    a.rate(4)  # the current user
    assert ledger.marks_of([a.id])[a.id].rating == 4 and ledger.marks_of([a.id])[a.id].verdict is None
    assert ledger.marks_of([a.id], by="alice")[a.id] == RunMarks(rating=5, verdict="picked")
    assert ledger.marks_of([a.id], by="*")[a.id] == RunMarks(rating=4, verdict="picked")  # the latest of anyone
    assert set(ledger.marks(by="*")["by"]) == {"alice", "bob", user_here()}
    assert list(ledger.marks(by="bob")["value"]) == ["2"]
    client.close()


def test_a_run_without_a_ledger_says_how_to_get_one(emu: EmulatorServer) -> None:
    with seqnb.Client(emu.token, emu.base_url) as client:
        run = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a moth", count=1)).wait(20)
        with pytest.raises(seqnb.SeqnbError, match="has no ledger to keep marks in"):
            run.pick()


def test_marks_survive_a_kernel_restart(emu: EmulatorServer, target: Target) -> None:
    client, (a, b, _) = sweep(emu, target)
    client.close()
    env = {**{k: v for k, v in os.environ.items() if k != "RUNCOMFY_TOKEN"}, "PYTHONPATH": os.getcwd()}
    write = f"""
        from seqnb.ledger.facade import Ledger
        ledger = Ledger({target.url!r})
        ledger.mark({a.id!r}, rating=5, verdict="picked", tags=["hero"])
        ledger.mark({a.id!r}, frame=1, rating=4)
        ledger.mark({b.id!r}, verdict="rejected", comment="too dark")
        ledger.close()
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(write)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    read = f"""
        from seqnb.ledger.facade import Ledger
        state = Ledger({target.url!r}).marks_of([{a.id!r}, {b.id!r}])
        print(repr(state[{a.id!r}]))
        print(repr(state[{b.id!r}]))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(read)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        repr(RunMarks(rating=5, frame_ratings={1: 4}, verdict="picked", tags=("hero",))),
        repr(RunMarks(verdict="rejected", comment="too dark")),
    ]
    assert Ledger(target.url).marks_of([a.id])[a.id].rating == 5


def test_runs_shows_the_marks_as_they_stand_and_filters_on_them(emu: EmulatorServer, target: Target) -> None:
    client, (a, b, c) = sweep(emu, target)
    ledger = client.ledger
    assert ledger is not None
    a.rate(5)
    a.pick()
    a.tag("hero", "dusk")
    a.comment("keeper")
    b.rate(4)
    b.tag("hero")
    b.untag("hero")
    c.rate(2)
    c.reject()
    ledger.mark(c.id, rating=5, verdict="picked", tags=["hero"], by="alice")
    frame = ledger.runs().set_index("id")
    assert frame.loc[a.id, "rating"] == 5 and frame.loc[a.id, "verdict"] == "picked"
    assert frame.loc[a.id, "tags"] == "dusk, hero" and frame.loc[a.id, "comment"] == "keeper"
    assert frame.loc[b.id, "tags"] == "" and pd.isna(frame.loc[b.id, "verdict"]) and pd.isna(frame.loc[b.id, "comment"])
    assert str(frame["rating"].dtype) == "Int64" and frame.loc[c.id, "verdict"] == "rejected"

    def ids(**filters: object) -> set[str]:
        return set(ledger.runs(**filters)["id"])  # type: ignore[arg-type]

    assert ids(rating_at_least=4) == {a.id, b.id} and ledger.count(rating_at_least=4) == 2
    assert ids(verdict="picked") == {a.id} and ids(verdict="rejected") == {c.id} and ids(verdict="none") == {b.id}
    assert ids(tag="hero") == {a.id} and ids(tag="dusk", rating_at_least=5) == {a.id}
    assert ids(tag="hero", marks_by="alice") == {c.id} and ids(verdict="picked", marks_by="*") == {a.id, c.id}
    assert ledger.runs(marks_by="alice").set_index("id").loc[c.id, "rating"] == 5
    assert ledger.spend(verdict="picked")["runs"].sum() == 1
    b.rate(0)  # cleared: no longer rated at all
    assert ids(rating_at_least=1) == {a.id, c.id} and pd.isna(ledger.runs(ids=[b.id]).loc[0, "rating"])
    with pytest.raises(seqnb.SettingInvalid, match="rating_at_least=6"):
        ledger.runs(rating_at_least=6)
    with pytest.raises(seqnb.SettingInvalid, match="verdict='good'"):
        ledger.runs(verdict="good")
    assert {"rating", "verdict"} <= set(ledger.compare([a.id, b.id]).columns)
    client.close()


def test_tags_from_before_marks_become_marks(target: Target) -> None:
    from seqnb.ledger.schema import MIGRATIONS

    store = target.store()
    store.migrate(MIGRATIONS, 4)
    for run_id, tags in (("r1", '["hero", "dusk"]'), ("r2", "[]"), ("r3", "not json")):
        store.execute(
            "INSERT INTO runs (id, backend, base_url, model, prompt, requested, payload, status, created_at, "
            "updated_at, tags) VALUES (?, 'emulator', 'http://127.0.0.1:1', 'bytedance/seedream-4-5/sequential', "
            "'Generate 2 images of a', 2, '{}', 'completed', 1.0, 1.0, ?)",
            (run_id, tags),
        )
    store.close()
    ledger = Ledger(target.url)
    frame = ledger.runs().set_index("id")
    assert frame.loc["r1", "tags"] == "dusk, hero" and frame.loc["r2", "tags"] == "" and frame.loc["r3", "tags"] == ""
    assert ledger.marks_of(["r1"])["r1"].tags == ("dusk", "hero")
    assert len(ledger.marks(by="*")) == 2
    ledger.close()
    assert len(Ledger(target.url).marks(by="*")) == 2  # migrated once


def test_an_empty_page_of_runs_still_has_the_mark_columns(target: Target) -> None:
    ledger = Ledger(target.url)
    for frame in (ledger.runs(), ledger.runs(text="nothing like this"), ledger.runs(verdict="picked")):
        assert frame.empty and {"rating", "verdict", "tags", "comment"} <= set(frame.columns)
    ledger.close()


def test_a_mark_the_ledger_cannot_write_is_a_ledger_error_and_the_run_row_stays(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1)).wait(20)
    ledger = client.ledger
    assert ledger is not None
    before = ledger.runs().drop(columns=["queue_s", "run_s"])
    original = SqliteStore.connection

    def read_only(self: SqliteStore) -> sqlite3.Connection:
        conn: sqlite3.Connection = original(self)
        conn.execute("PRAGMA query_only=1")
        return conn

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SqliteStore, "connection", read_only)
        with pytest.raises(seqnb.LedgerError, match=f"cannot mark run {run.id}: .*read-only"):
            run.rate(5)
    pd.testing.assert_frame_equal(ledger.runs().drop(columns=["queue_s", "run_s"]), before)
    assert ledger.marks(by="*").empty
    ledger.store.execute("PRAGMA query_only=0")  # the ledger writable again: the mark goes in
    run.rate(5)
    assert run.marks.rating == 5
    client.close()


def test_many_processes_marking_one_run_at_once_lose_nothing(emu: EmulatorServer, target: Target) -> None:
    client, (run, *_) = sweep(emu, target, seeds=1)
    client.close()
    env = {**{k: v for k, v in os.environ.items() if k != "RUNCOMFY_TOKEN"}, "PYTHONPATH": os.getcwd()}
    code = f"""
        import sys
        from seqnb.ledger.facade import Ledger
        ledger = Ledger({target.url!r})
        who = sys.argv[1]
        for i in range(40):
            ledger.mark({run.id!r}, rating=1 + i % 5, tags=[f"{{who}}-{{i}}"], by=who)
        ledger.mark({run.id!r}, rating=3, verdict="picked", by=who)
    """
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), who], env=env, stderr=subprocess.PIPE)
        for who in ("ann", "ben", "cy")
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs), [p.stderr.read() for p in procs if p.stderr]
    ledger = Ledger(target.url)
    log = ledger.marks(by="*")
    assert len(log) == 3 * (40 * 2 + 2) and log["id"].is_unique and log["id"].is_monotonic_increasing
    for who in ("ann", "ben", "cy"):
        mine = ledger.marks_of([run.id], by=who)[run.id]
        assert mine.rating == 3 and mine.verdict == "picked" and len(mine.tags) == 40
    assert ledger.count(verdict="picked", marks_by="*") == 1 and ledger.count(rating_at_least=3, marks_by="ann") == 1
    ledger.close()


def test_the_ledger_tab_lists_each_runs_rating_and_verdict(emu: EmulatorServer, target: Target) -> None:
    from seqnb.ui.ledger_view import LedgerView

    client, (a, b, c) = sweep(emu, target)
    a.rate(4)
    a.pick()
    b.reject()
    ledger = client.ledger
    assert ledger is not None
    view = LedgerView(ledger, client, visible=False)
    view.refresh()
    labels = {value: label for label, value in view.selection.options}
    assert " · completed · ★4 · ✔ picked · " in labels[a.id] and " · completed · ✘ rejected · " in labels[b.id]
    assert "★" not in labels[c.id] and "picked" not in labels[c.id]
    client.close()


def test_the_job_board_rows_show_the_marks_at_the_next_redraw(emu: EmulatorServer, target: Target) -> None:
    from seqnb.ui.job_board import JobBoard

    client, (a, b, c) = sweep(emu, target)
    board = JobBoard(client)
    a.rate(5)
    a.pick()
    b.reject()
    rows = {r["id"]: r for r in board.flush()["rows"]}
    assert (rows[a.id]["rating"], rows[a.id]["verdict"]) == (5, "picked")
    assert (rows[b.id]["rating"], rows[b.id]["verdict"]) == (None, "rejected")
    assert (rows[c.id]["rating"], rows[c.id]["verdict"]) == (None, None)
    board.close()
    client.close()


def test_a_rating_row_no_seqnb_wrote_is_no_rating_and_breaks_no_query(emu: EmulatorServer, target: Target) -> None:
    """A team ledger holds what any teammate's tool wrote: a rating of "lots", "4.5", "9" or "-1" is no rating, and
    runs(), its rating filter and marks_of() answer for everyone (PostgreSQL refused to cast such a value, so one
    hostile row made every teammate's runs() fail; SQLite read "9" as nine stars)."""
    client, (a, b, c) = sweep(emu, target)
    ledger = client.ledger
    assert ledger is not None
    a.rate(4)
    b.rate(5)
    c.rate(3)
    insert = 'INSERT INTO marks (id, run_id, frame, kind, value, "by", "at") VALUES (?, ?, NULL, \'rating\', ?, ?, ?)'
    for i, (run, value) in enumerate(((b, "lots"), (c, "4.5"), (c, "9"), (a, "-1"), (a, "4"))):
        target.execute(insert, (10_000 + i, run.id, value, user_here(), 2e9 + i))
    frame = ledger.runs().set_index("id")
    assert frame.loc[a.id, "rating"] == 4  # its latest row is a rating again
    assert pd.isna(frame.loc[b.id, "rating"]) and pd.isna(frame.loc[c.id, "rating"])
    assert set(ledger.runs(rating_at_least=1)["id"]) == {a.id} and ledger.count(rating_at_least=5) == 0
    assert ledger.marks_of([b.id, c.id]) == {b.id: RunMarks(), c.id: RunMarks()}
    client.close()
