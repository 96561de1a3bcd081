"""A team on one ledger: many processes writing and resuming at once, whose runs are whose, one budget, one image cache.

The many-writer tests run real processes against the throwaway PostgreSQL cluster (and the
budget race against SQLite too); every process is a separate client with its own session.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.images.cache import ImageCache
from seqnb.ledger.facade import Ledger
from seqnb.ledger.schema import SCHEMA_VERSION
from seqnb.testing import emulator
from tests import postgres
from tests.postgres import Cluster, Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: a test taking ``target`` runs on both stores
pytestmark = pytest.mark.slow  # several processes and kernels at once


def python(code: str, user: str, **kw: object) -> subprocess.Popen[str]:
    """Another kernel: a Python process of its own, as ``user`` (``SEQNB_USER``)."""
    env = {k: v for k, v in os.environ.items() if k != "RUNCOMFY_TOKEN"}
    env["SEQNB_USER"] = user
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )  # type: ignore[call-overload]


def ready(procs: list[subprocess.Popen[str]]) -> None:
    """Wait until every process says READY, then let them all go at once (the race starts here)."""
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "READY", (line, proc.stderr.read() if proc.stderr else "")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def finish(procs: list[subprocess.Popen[str]], timeout: float = 180) -> list[str]:
    outs = [p.communicate(timeout=timeout) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
    return [out for out, _ in outs]


@pytest.fixture
def pg(pg_cluster: Cluster) -> str:
    return pg_cluster.create_database()


@pytest.fixture
def slow_emu() -> Iterator[EmulatorServer]:
    with emulator(workers=8, queue_wait=0.5, base_seconds=0.3, seconds_per_image=0.1) as server:
        yield server


def test_four_kernels_write_one_ledger_at_once_and_each_run_says_whose_it_is(pg: str, slow_emu: EmulatorServer) -> None:
    writer = f"""
        import sys, seqnb
        client = seqnb.connect({slow_emu.token!r}, {slow_emu.base_url!r}, ledger={pg!r}, download=False)
        print("READY", flush=True)
        sys.stdin.readline()
        runs = client.sweep(prompts=["Generate 2 images of a tern"], seeds=range(25), quiet=True)
        client.wait_all(runs, timeout=120)
        print(" ".join(r.id for r in runs))
    """
    users = ["ana", "ben", "chen", "dia"]
    procs = [python(writer, user) for user in users]
    ready(procs)
    ids = [out.split() for out in finish(procs)]
    ledger = Ledger(pg)
    frame = ledger.runs()
    assert len(frame) == 100 and frame["id"].is_unique  # none lost, none twice
    assert set(frame["status"]) == {"completed"} and slow_emu.counters.submits == 100
    for user, mine in zip(users, ids, strict=True):
        theirs = ledger.runs(by=user)
        assert sorted(theirs["id"]) == sorted(mine) and set(theirs["user"]) == {user}
        assert theirs["session"].nunique() == 1 and set(theirs["owner"]) == set(theirs["session"])
    assert len(ledger.runs(by=["ana", "ben"])) == 50 and len(ledger.runs(by="nobody")) == 0
    host = frame["host"].iloc[0]
    assert len(ledger.runs(by=f"ana@{host}")) == 25 and ledger.count(by="chen") == 25
    spend = ledger.spend("user").set_index("user")
    assert list(spend.index) == users and (spend["runs"] == 25).all()
    assert spend["simulated"].sum() == pytest.approx(100 * 2 * 0.04)
    sessions = ledger.sessions()
    assert len(sessions) == 4 and not sessions["live"].any()  # each process ended its session at exit


def test_kernels_resuming_at_once_share_out_a_dead_kernels_runs_each_to_one(pg: str) -> None:
    with emulator(workers=2, queue_wait=1.0, service_time=1.0) as emu:
        dying = python(
            f"""
            import time, seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={pg!r}, download=False)
            runs = client.sweep(prompts=["Generate 2 images of a vole"], seeds=range(12), quiet=True)
            while any(r.status in ("created", "submitting") for r in runs) or client.ledger.count(
                status=("created", "submitting")
            ):  # every answer seen and written
                time.sleep(0.02)
            print("SUBMITTED", flush=True)
            time.sleep(600)
            """,
            "ana",
        )
        assert dying.stdout is not None and dying.stdout.readline().strip() == "SUBMITTED"
        dying.send_signal(signal.SIGKILL)
        dying.wait(10)
        resumer = f"""
            import sys, seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={pg!r}, download=False)
            print("READY", flush=True)
            sys.stdin.readline()
            runs = client.resume()
            client.wait_all(runs, timeout=120)
            print(" ".join(r.id for r in runs) or "-")
        """
        # three of ana's kernels resume at once; a teammate's kernel resumes too, with the default scope
        procs = [python(resumer, user) for user in ("ana", "ana", "ana", "ben")]
        ready(procs)
        outs = finish(procs)
        claimed = [[i for i in out.split() if i != "-"] for out in outs]
        assert claimed[3] == []  # ben adopts none of ana's runs by accident
        taken = [run_id for ids in claimed[:3] for run_id in ids]
        frame = Ledger(pg).runs()
        assert len(taken) == len(set(taken)) == 12  # every run taken over exactly once
        assert set(frame["status"]) == {"completed"} and len(frame) == 12
        assert emu.counters.submits == 12  # nothing submitted twice
        assert set(frame["user"]) == {"ana"}  # who made them stays; who watched them last moved
        assert frame["owner"].nunique() >= 1 and not (frame["owner"] == frame["session"]).any()


def test_a_team_budget_holds_when_kernels_race_for_it(target: Target, emu: EmulatorServer) -> None:
    """Four processes try three sweeps of USD 0.16 each at once against USD 1.00: exactly six pass."""
    Ledger(target.url, budget="1.00")
    racer = f"""
        import sys, seqnb
        client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={target.url!r}, download=False)
        print("READY", flush=True)
        sys.stdin.readline()
        outcomes = []
        for seed in range(3):
            try:
                runs = client.sweep(prompts=["Generate 2 images of a wren"], seeds=[seed, seed + 100], quiet=True)
                outcomes.append("sent")
            except seqnb.BudgetExceeded as exc:
                outcomes.append("refused")
                print(exc, file=sys.stderr)
        client.wait_all(timeout=60)
        print(" ".join(outcomes))
    """
    procs = [python(racer, f"user{i}") for i in range(4)]
    ready(procs)
    outcomes = [word for out in finish(procs) for word in out.split()]
    assert outcomes.count("sent") == 6 and outcomes.count("refused") == 6
    ledger = Ledger(target.url)
    frame = ledger.runs()
    assert len(frame) == 12 and frame["sweep_id"].nunique() == 6  # refused sweeps left no row
    assert ledger.committed("USD", "emulator") == ledger.budget() - Decimal("0.04")
    assert emu.counters.submits == 12


def test_a_budget_counts_everyone_and_runs_in_flight_or_in_doubt_and_says_what_it_counted(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator(queue_wait=30) as emu:  # runs stay queued: in flight
        ledger = Ledger(target.url, budget="0.20")
        assert ledger.budget() == Decimal("0.20") and ledger.budget("EUR") is None
        monkeypatch.setenv("SEQNB_USER", "ana")
        ana = seqnb.connect(emu.token, emu.base_url, ledger=target.url, download=False)
        first = ana.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a mole", count=2, seed=1))
        monkeypatch.setenv("SEQNB_USER", "ben")
        ben = seqnb.connect(emu.token, emu.base_url, ledger=target.url, download=False)
        second = ben.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a mole", count=2, seed=2))
        for run in (first, second):
            while run.status != "in_queue":
                time.sleep(0.01)
        with pytest.raises(seqnb.BudgetExceeded) as refused:
            ben.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a mole", count=2, seed=3))
        message = str(refused.value)
        assert "USD 0.16" in message and "USD 0.08" in message and "USD 0.20" in message  # spend, estimate, budget
        assert "in flight" in message and "set_budget" in message
        with pytest.raises(seqnb.BudgetExceeded):
            ana.sweep(prompts=["Generate 2 images of a mole"], seeds=[9], quiet=True)  # 0.16 + 0.08 > 0.20
        assert emu.counters.submits == 2 and len(Ledger(target.url).runs()) == 2  # nothing sent, nothing written
        ana.cancel(first)  # a cancelled run costs nothing: room again for one more
        ben.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a mole", count=2, seed=3))
        target.execute("UPDATE runs SET status='unknown' WHERE id=?", (second.id,))  # in doubt still counts
        assert ledger.committed("USD", "emulator") == Decimal("0.16")
        assert ledger.committed("USD", "runcomfy") == 0  # a budget counts the spend of its own kind of backend
        ledger.set_budget(None)
        assert ledger.budget() is None
        last = ben.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a mole", count=2, seed=4))
        with pytest.raises(ValueError, match=r"50\.00"):
            ledger.set_budget("lots")
        while last.status != "in_queue":  # closing while a submit is being answered can hang the poller (reported)
            time.sleep(0.01)
        ana.close()
        ben.close()


def test_resume_adopts_a_teammates_dead_runs_only_when_asked(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(queue_wait=30) as emu:
        code = f"""
            import time, seqnb
            client = seqnb.connect({emu.token!r}, {emu.base_url!r}, ledger={target.url!r}, download=False)
            run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a newt", count=2, seed=3))
            while client.ledger.count(status="in_queue") < 1:  # the queued row written, not only seen
                time.sleep(0.01)
            print("QUEUED", flush=True)
            time.sleep(600)
        """
        ana = python(code, "ana")
        try:
            assert ana.stdout is not None and ana.stdout.readline().strip() == "QUEUED"
            ana.kill()
            ana.wait(10)
            monkeypatch.setenv("SEQNB_USER", "ben")
            ben = seqnb.connect(emu.token, emu.base_url, ledger=target.url, download=False)
            assert ben.resume() == []  # ana's run, not ben's
            with pytest.raises(ValueError, match="mine, team"):
                ben.resume(scope="everyone")  # type: ignore[arg-type]
            taken = ben.resume(scope="team")
            assert len(taken) == 1 and taken[0].status == "in_queue"
            row = Ledger(target.url).runs().iloc[0]
            assert row["user"] == "ana" and row["owner"] != row["session"]  # made by ana, watched by ben
            assert ben.resume(scope="team") == [] and emu.counters.submits == 1
        finally:
            ana.kill()


def test_a_kernel_taken_for_gone_stops_watching_the_run_another_took_over(target: Target) -> None:
    with emulator(queue_wait=1.5, base_seconds=0.2, seconds_per_image=0.05) as emu:
        taken_over(target, emu)


def taken_over(target: Target, slow_emu: EmulatorServer) -> None:
    first = seqnb.connect(slow_emu.token, slow_emu.base_url, ledger=target.url, download=False)
    run = first.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a shrew", count=2, seed=5))
    recorder = first.aio._recorder
    ledger = first.ledger
    assert recorder is not None and ledger is not None
    while ledger.count(status="in_queue") < 1:  # the queued row written, not only seen
        time.sleep(0.01)
    ledger.end_session(recorder.session.id)  # as a heartbeat gone stale would make it look: taken for gone
    second = seqnb.connect(slow_emu.token, slow_emu.base_url, ledger=target.url, download=False)
    taken = second.resume()
    assert [r.id for r in taken] == [run.id]
    second.wait_all(taken, timeout=30)
    assert taken[0].status == "completed"
    assert not run.aio.watching and "taken over by another session" in run.note  # the first kernel let go
    row = Ledger(target.url).runs().iloc[0]
    assert row["status"] == "completed" and row["owner"] == second.aio._recorder.session.id  # type: ignore[union-attr]
    assert slow_emu.counters.submits == 1


def test_a_server_that_cannot_be_reached_is_named_without_its_password(pg_cluster: Cluster) -> None:
    url = f"postgresql://ana:s3cret-pw@127.0.0.1:{postgres.free_port()}/team"
    with pytest.raises(seqnb.LedgerError) as caught:
        Ledger(url)
    message = str(caught.value)
    assert "postgresql://ana@127.0.0.1" in message and "cannot reach the PostgreSQL server" in message
    assert "s3cret-pw" not in message and "PGPASSWORD" in message
    ledger = Ledger(pg_cluster.create_database())
    assert "s3cret" not in repr(ledger) and ledger.path is None and ledger.location.startswith("postgresql://")


def test_a_dropped_connection_is_opened_again(pg: str) -> None:
    ledger = Ledger(pg)
    assert len(ledger.runs()) == 0
    Target("postgresql", pg).execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'seqnb' AND pid <> pg_backend_pid()"
    )
    assert len(ledger.runs()) == 0  # a server restart or an idle timeout costs nothing but a reconnect
    ledger.set_budget("5")
    assert ledger.budget() == 5


def test_two_processes_filling_one_shared_image_cache_never_corrupt_it(tmp_path: Path) -> None:
    shared = tmp_path / "team-cache"
    filler = f"""
        import io, sys
        from PIL import Image
        from seqnb.images.cache import ImageCache
        cache = ImageCache({str(shared)!r})
        images = []
        for i in range(40):  # the same 40 images in both processes, each under two URLs
            buf = io.BytesIO()
            Image.new("RGB", (64 + i, 48), (i * 6 % 256, 80, 160)).save(buf, format="PNG")
            images.append(buf.getvalue())
        print("READY", flush=True)
        sys.stdin.readline()
        for round in range(5):
            for i, data in enumerate(images):
                cache.store(f"https://files.example/{{i}}.png", data)
                cache.store(f"https://mirror.example/{{i}}.png?r={{round % 2}}", data)
        print("ok")
    """
    procs = [python(filler, "ana"), python(filler, "ben")]
    ready(procs)
    assert finish(procs) == ["ok\n", "ok\n"]
    objects = list((shared / "objects").rglob("*.png"))
    assert len(objects) == 40  # content-addressed: one file per image, however many writers and URLs
    for path in objects:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem  # every file whole
    assert not [p for p in shared.rglob("*") if p.name.startswith(".tmp-")]  # no temp file left behind
    cache = seqnb.ImageCache(shared)
    for i in range(40):
        one, other = cache.lookup(f"https://files.example/{i}.png"), cache.lookup(f"https://mirror.example/{i}.png?r=1")
        assert one is not None and other is not None and one.path == other.path and one.width == 64 + i


def test_many_kernels_opening_a_new_team_ledger_at_once_all_get_it(pg: str) -> None:
    """The first open creates the schema; a dozen at the same instant must not race on it (CI once saw them do)."""
    import threading

    start = threading.Barrier(12)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            Ledger(pg).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[0]
    assert Ledger(pg).version == SCHEMA_VERSION


def test_two_kernels_on_one_sqlite_ledger_one_clock_two_minutes_ahead_submit_every_run_exactly_once(
    tmp_path: Path, slow_emu: EmulatorServer
) -> None:
    """Each kernel sends runs while the other resumes; the second one runs "on another machine" whose clock is 120 s
    ahead (its ``time.time``, its host name and its machine id are that machine's). Ahead, not behind: a client whose
    clock is behind the service's waits out the difference before it polls a run (the poller's pacing, not the
    ledger's concern), and the old rule took sessions for gone in both directions."""
    path = tmp_path / "l.sqlite"
    Ledger(path).close()  # the schema, made once
    kernel = """
        import json, socket, sys, time
        if {skew}:  # another machine: its own clock and its own name
            real = time.time
            time.time = lambda: real() + {skew}
            socket.gethostname = lambda: "far-host"
            import seqnb.ledger.sessions
            seqnb.ledger.sessions.machine_id = lambda: "a-machine-far-away"
        import seqnb
        client = seqnb.connect({token!r}, {base!r}, ledger={path!r}, download=False)
        print("READY", flush=True)
        sys.stdin.readline()
        mine, resumed = [], []
        for round in range(4):
            mine += client.sweep(prompts=["Generate 2 images of a {animal}"], seeds=range(round * 5, round * 5 + 5),
                                 quiet=True)
            resumed += client.resume()  # the other kernel is sending runs right now
            time.sleep(0.3)
        client.wait_all(mine + resumed, timeout=120)
        print(json.dumps({{"mine": [r.id for r in mine], "resumed": [r.id for r in resumed]}}))
    """
    procs = [
        python(
            kernel.format(skew=skew, token=slow_emu.token, base=slow_emu.base_url, path=str(path), animal=animal), "ana"
        )
        for skew, animal in ((0, "skua"), (120, "gull"))
    ]
    ready(procs)
    outs = [json.loads(out) for out in finish(procs)]
    frame = Ledger(path).runs()
    assert len(frame) == 40 and sorted(frame["id"]) == sorted(i for out in outs for i in out["mine"])
    assert slow_emu.counters.submits == 40  # every run submitted exactly once
    assert frame["request_id"].notna().all() and frame["request_id"].is_unique
    assert set(frame["status"]) == {"completed"}  # none called "not sent", none in doubt: each reached the service once
    assert not frame["error"].fillna("").str.contains("not sent").any()
    assert [out["resumed"] for out in outs] == [[], []] and (frame["owner"] == frame["session"]).all()  # live: kept


def test_image_rows_survive_a_twenty_second_postgresql_outage_mid_sweep(pg_cluster: Cluster, tmp_path: Path) -> None:
    own = Cluster(pg_cluster.bin).start()  # a server of its own: stopping it stops no other test's
    try:
        url = own.create_database()
        with emulator(workers=2, queue_wait=0.2, base_seconds=1.0, seconds_per_image=0.3) as emu:  # about 24 s
            client = seqnb.connect(emu.token, emu.base_url, ledger=url, download=ImageCache(tmp_path / "cache"))
            runs = client.sweep(prompts=["Generate 2 images of a shag"], seeds=range(30), quiet=True)
            while not all(r.request_id for r in runs):  # every submit left, and was written as leaving
                time.sleep(0.05)
            own.halt()
            time.sleep(20)  # the sweep goes on: runs complete and their images are fetched, the ledger gone
            during = sum(r.status == "completed" for r in runs)
            own.launch()
            client.wait_all(runs, timeout=120)
            client.settle(120)
            assert client.ledger is not None
            client.ledger.flush()
            client.close()
        assert 0 < during < 30  # the outage fell mid-sweep
        ledger = Ledger(url)
        frame = ledger.runs()
        assert len(frame) == 30 and set(frame["status"]) == {"completed"}
        images = ledger.images()
        assert len(images) == 60 and set(images["state"]) == {"cached"}  # every completed run, all its image rows
        assert images["sha256"].notna().all() and images["path"].map(lambda p: Path(p).exists()).all()
        ledger.close()
    finally:
        own.stop()
