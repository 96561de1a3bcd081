"""Who owns a run: the ``submitting`` write as a lease, and liveness that trusts no wall clock across machines nor a host name.

A session "on another machine" is a real session in this process whose row says so: its machine id
(and, for the old rule it replaces, its host name or pid) is what that machine would have written,
and its clock, where a test skews it, is the one its heartbeat is written with. Its heartbeat is
real; a machine that vanishes is one whose heartbeat thread stops without ending its session.
The many-process cases are in ``tests/system/test_ledger_team.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.ledger import sessions
from seqnb.ledger.facade import Ledger
from seqnb.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from seqnb.ledger.sessions import SessionInfo
from seqnb.testing import emulator
from tests import postgres
from tests.postgres import Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: a test taking ``target`` runs on both stores

BEAT = 1.0
"""The heartbeat of the session on another machine: three of them (the time to be taken for gone) stay short."""


@pytest.fixture
def queued_emu() -> Iterator[EmulatorServer]:
    with emulator(queue_wait=60) as server:  # runs stay queued: in flight for the whole test
        yield server


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The first true value ``check`` returns, asked until ``timeout`` seconds have passed."""
    end = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.05)
    return value


def dead_pid() -> int:
    """The pid of a process that has ended (on this machine)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def far_client(
    emu: EmulatorServer, url: str, monkeypatch: pytest.MonkeyPatch, *, host: str, pid: int | None, skew: float = 0.0
) -> seqnb.Client:
    """A client whose session says it runs on another machine (named ``host``, its process ``pid`` there), beating every
    ``BEAT`` seconds, its heartbeat written by a clock ``skew`` seconds off (on SQLite, whose clock is the writer's)."""
    real_here = SessionInfo.here
    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(sessions, "machine_id", lambda: "a-machine-far-away", raising=False)
        elsewhere.setattr(socket, "gethostname", lambda: host)
        if pid is not None:
            elsewhere.setattr(SessionInfo, "here", classmethod(lambda cls: dataclasses.replace(real_here(), pid=pid)))
        ledger = Ledger(url, heartbeat=BEAT)
        if skew:
            real_now = ledger.store.now
            monkeypatch.setattr(ledger.store, "now", lambda: real_now() + skew)
        return seqnb.connect(emu.token, emu.base_url, ledger=ledger, download=False)


def left_alone_while_beating_then_taken_once_silent(far: seqnb.Client, emu: EmulatorServer, url: str) -> None:
    """A queued run of ``far``: no resume takes it while ``far`` beats (over more than three of its beats), one does
    once its heartbeat stops; it was submitted once."""
    queued = far.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a gannet", count=2, seed=1))
    assert far.ledger is not None
    until(lambda: far.ledger.count(status="in_queue") == 1)  # type: ignore[union-attr]
    here = seqnb.connect(emu.token, emu.base_url, ledger=url, download=False)
    for _ in range(4):  # four of its beats: more than the three that would make it gone
        assert here.resume() == []
        time.sleep(BEAT)
    assert queued.aio.watching and queued.status == "in_queue"
    far.ledger.keeper._beat_stop.set()  # that machine vanishes without a word: its heartbeat stops, its session never ends
    taken = until(here.resume)
    assert [r.id for r in taken] == [queued.id] and emu.counters.submits == 1
    here.close()
    far.close()


def test_a_run_taken_over_before_its_submit_leaves_is_never_sent_and_says_who_owns_it(
    emu: EmulatorServer, target: Target
) -> None:
    first = seqnb.connect(emu.token, emu.base_url, ledger=target.url, download=False)
    run = first.aio._prepare(seqnb.Request("seedream-4.5", "Generate 2 images of a puffin", count=2, seed=1))
    recorder = first.aio._recorder
    assert first.ledger is not None and recorder is not None
    first.ledger.end_session(recorder.session.id)  # as a wrong judgement of "gone" makes it look (clock, host name)
    second = seqnb.connect(emu.token, emu.base_url, ledger=target.url, download=False)
    assert second.resume() == []  # it takes the run over: written, never sent, so "not sent" (and true)
    owner = second.aio._recorder.session.id  # type: ignore[union-attr]
    with pytest.raises(seqnb.LedgerError) as caught:
        first._run(first.aio._send(run))  # the first kernel was alive all along, and now sends it
    assert isinstance(caught.value, seqnb.errors.RunTakenOver) and caught.value.owner == owner
    assert emu.counters.submits == 0  # the POST never left: nobody pays for it, let alone twice
    message = str(caught.value)
    assert owner in message and "not sent from this kernel" in message and "rerun" not in message
    assert run.status == "failed" and run.error == message
    row = Ledger(target.url).runs(ids=[run.id]).iloc[0]
    assert row["owner"] == owner and row["status"] == "failed"  # the owner's word stands: written, never sent
    first.close()
    second.close()


def test_a_live_session_on_another_machine_with_this_host_name_is_never_taken_for_gone(
    queued_emu: EmulatorServer, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two machines named alike: the pid in the other one's row is nobody here, which must not make it look dead."""
    far = far_client(queued_emu, target.url, monkeypatch, host=socket.gethostname(), pid=dead_pid())
    left_alone_while_beating_then_taken_once_silent(far, queued_emu, target.url)


@pytest.mark.parametrize("skew", [-120.0, 120.0], ids=["behind", "ahead"])
def test_on_sqlite_a_clock_skewed_by_two_minutes_neither_makes_a_live_session_gone_nor_a_silent_one_live(
    queued_emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    url = str(tmp_path / "l.sqlite")
    far = far_client(queued_emu, url, monkeypatch, host="far-host", pid=None, skew=skew)
    left_alone_while_beating_then_taken_once_silent(far, queued_emu, url)


def test_on_sqlite_a_resume_too_early_to_judge_another_machine_says_when_to_try_again(
    queued_emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = str(tmp_path / "l.sqlite")
    far = far_client(queued_emu, url, monkeypatch, host="far-host", pid=None)
    far.ledger.keeper._beat_stop.set()  # type: ignore[union-attr]  # silent from the start: gone, but not seen so yet
    far.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a tern", count=2, seed=1))
    here = seqnb.connect(queued_emu.token, queued_emu.base_url, ledger=url, download=False)
    with caplog.at_level(logging.WARNING, logger="seqnb.ledger"):
        assert here.resume() == []
    assert "1 run(s) not taken over" in caplog.text and "resume again in" in caplog.text
    assert len(until(here.resume)) == 1
    here.close()
    far.close()


def test_a_session_of_this_process_is_live_while_open_whatever_its_heartbeat(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    """The pid check of this very process asks whether the session is open here, not whether the pid runs."""
    path = tmp_path / "l.sqlite"
    one, other = Ledger(path), Ledger(path)
    client = seqnb.Client(emu.token, emu.base_url)
    client.use_ledger(one)
    session = client.aio._recorder.session.id  # type: ignore[union-attr]
    one.store.execute("UPDATE sessions SET heartbeat_at=0 WHERE id=?", (session,))  # a beat long ago
    assert session in other.live_sessions()
    one.close()
    assert session not in other.live_sessions()
    client.close()


def test_migration_10_keeps_a_version_8_ledger_with_its_runs_and_sessions(emu: EmulatorServer, target: Target) -> None:
    store = target.store()
    assert store.migrate(MIGRATIONS, 8) == 0  # a ledger as seqnb left it before migrations 9 (labels) and 10
    store.close()
    target.execute(
        "INSERT INTO sessions (id, username, host, pid, kernel, started_at, heartbeat_at) "
        "VALUES ('se-old', 'ana', 'hub-1', 4242, NULL, 1.0, 1.0)"
    )
    target.execute(
        "INSERT INTO runs (id, backend, base_url, model, prompt, requested, payload, status, created_at, updated_at, "
        "est_cost, currency, session, owner) VALUES ('r1', 'emulator', 'http://127.0.0.1:1', "
        "'bytedance/seedream-4-5/sequential', 'Generate 2 images of a', 2, "
        '\'{"prompt": "Generate 2 images of a", "sequential_image_generation_options": 2}\', \'completed\', 1.0, 1.0, '
        "'0.08', 'USD', 'se-old', 'se-old')"
    )
    ledger = Ledger(target.url)
    assert ledger.version == SCHEMA_VERSION >= 10  # and on to the latest (the duels: 11)
    frame = ledger.runs()
    assert list(frame["id"]) == ["r1"] and frame.loc[0, "user"] == "ana" and frame.loc[0, "status"] == "completed"
    assert target.execute("SELECT machine, beats, beat_seconds FROM sessions WHERE id='se-old'") == [(None, 0, None)]
    client = seqnb.Client(emu.token, emu.base_url)
    client.use_ledger(ledger)  # a new session writes the new columns
    session = client.aio._recorder.session.id  # type: ignore[union-attr]
    machine, beats, every = target.execute("SELECT machine, beats, beat_seconds FROM sessions WHERE id=?", (session,))[
        0
    ]
    assert machine == sessions.machine_id() and beats == 0 and every == ledger.heartbeat
    client.close()
    ledger.close()
