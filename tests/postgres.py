"""A throwaway PostgreSQL cluster for the ledger's tests: initdb + pg_ctl on a free loopback port in a temp dir.

One cluster per test run (started on first use, stopped by the session fixture's teardown and,
as a last resort, at exit), one fresh database per test. Trust auth over TCP on 127.0.0.1 only;
no Unix socket. As root, the data directory belongs to ``postgres`` and the server runs as that
user (``initdb`` refuses root). Without the binaries or psycopg the PostgreSQL tests skip with a
message saying how to get them, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from seqnb.ledger.stores import open_store
from seqnb.ledger.stores.base import Store

HOW = "install Debian's postgresql package (apt-get install postgresql) and psycopg (pip install 'seqnb[postgresql]')"


WATCHDOG = """
import os, shutil, subprocess, sys, time
parent, root = int(sys.argv[1]), sys.argv[2]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
subprocess.run(sys.argv[3:], check=False)
shutil.rmtree(root, ignore_errors=True)
"""
"""Runs beside the test run: when the test process is gone, stop its server (``pg_ctl stop``) and remove its files."""


def bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """A PostgreSQL server of its own, in a temp dir; ``url(db)`` for each database in it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="seqnb-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.running = False

    def _command(self, *args: str) -> list[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_root else command

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(*args), capture_output=True, text=True, check=False, timeout=120, cwd=self.root
        )

    def start(self) -> Cluster:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        self.launch()
        self.watchdog = subprocess.Popen(  # stops the server even if this process is killed before its teardown
            [
                sys.executable,
                "-c",
                WATCHDOG,
                str(os.getpid()),
                str(self.root),
                *self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def launch(self) -> None:
        """Start the server on its data directory and port (again, after ``halt``)."""
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=300",
            "-c fsync=off",  # a throwaway cluster: speed over durability
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            "-c shared_buffers=32MB",
        ]
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", " ".join(settings), "start")  # fmt: skip
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{log[-2000:]}")
        self.running = True

    def halt(self) -> None:
        """Stop the server (an outage: every connection dropped, none accepted) until ``launch`` starts it again."""
        done = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {done.stderr or done.stdout}")

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False
            self.watchdog.kill()
            self.watchdog.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


_cluster: Cluster | None = None


def cluster() -> Cluster:
    """The one cluster of this test run (started on first call); skips (fails in CI) without PostgreSQL."""
    global _cluster
    if _cluster is None:
        missing = []
        try:
            import psycopg  # noqa: F401
        except ImportError:
            missing.append("psycopg")
        bin_dir = bindir()
        if bin_dir is None:
            missing.append("the PostgreSQL server binaries (initdb, pg_ctl)")
        if missing:
            message = f"PostgreSQL ledger tests need {' and '.join(missing)}: {HOW}"
            if os.environ.get("CI"):
                pytest.fail(message + " (.ci/run installs them; in CI these tests never skip)")
            pytest.skip(message)
        assert bin_dir is not None
        started = Cluster(bin_dir)
        atexit.register(started.stop)  # if the session fixture's teardown never runs
        _cluster = started.start()
    return _cluster


def stop() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The test run's PostgreSQL cluster, stopped at the end of the run."""
    try:
        yield cluster()
    finally:
        stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh database of the test run's cluster."""
    return pg_cluster.create_database()


class Target:
    """Where a test's ledger lives, on either store: ``url`` to open it, raw SQL and a dump to look inside."""

    def __init__(self, kind: str, url: str, directory: Path | None = None) -> None:
        self.kind = kind
        self.url = url
        self.directory = directory

    def store(self) -> Store:
        """A fresh store on this target (its own connections), e.g. to build an old schema by hand."""
        return open_store(self.url)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement (``?`` placeholders) on a connection of its own, committed; returns its rows, if any."""
        store = self.store()
        try:
            cursor = store.execute(sql, args)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        finally:
            store.close()

    def dump(self) -> bytes:
        """Every byte the ledger stored: the files (SQLite), or every row of every table (PostgreSQL)."""
        if self.directory is not None:
            return b"".join(p.read_bytes() for p in self.directory.iterdir() if p.is_file())
        tables = [t for (t,) in self.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return b"".join(str(row).encode() for table in tables for row in self.execute(f"SELECT t::text FROM {table} t"))

    def __repr__(self) -> str:
        return f"<ledger on {self.kind}>"


STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]  # the fast path: SQLite only


@pytest.fixture(params=STORES)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A fresh, empty ledger location on each store in turn: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        directory = tmp_path / "ledger"
        directory.mkdir()
        return Target("sqlite", str(directory / "l.sqlite"), directory)
    pg: Cluster = request.getfixturevalue("pg_cluster")
    return Target("postgresql", pg.create_database())
