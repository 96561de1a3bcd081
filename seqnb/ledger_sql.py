"""Where a ledger keeps its rows: an SQLite file (the embedded default) or a PostgreSQL database (for a team).

The ledger writes one SQL for both (``?`` placeholders, the types of ``MIGRATIONS``); a store
says only what differs: how to connect, how to open a transaction that serializes the checks
that must be atomic (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory
lock), where the schema version lives, whose clock is "now", and what a driver error means.
PostgreSQL goes through psycopg 3 (``pip install 'seqnb[postgresql]'``), imported only when a
``postgresql://`` ledger is opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import LedgerError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore", "SqliteStore", "Store", "is_url", "open_store"]

LOCK_KEY = 0x5E0_1ED6E
"""The PostgreSQL advisory lock that serializes migrations, claims and budget checks (one per database)."""
STATEMENT_TIMEOUT_MS = 30_000
"""No statement (a lock wait included) runs longer than this on PostgreSQL, as SQLite's busy timeout."""
CONNECT_TIMEOUT_S = 10


def is_url(target: str | os.PathLike[str]) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in ("postgresql", "postgres")


def open_store(target: str | os.PathLike[str]) -> Store:
    """The store for a file path or a ``postgresql://`` URL."""
    return PostgresStore(str(target)) if is_url(target) else SqliteStore(Path(target).expanduser())


class Store:
    """One kind of database behind a ledger: connections per thread, transactions, version, clock, errors."""

    kind = ""
    location = ""
    """Where the rows are, fit to print (a path, or a URL without its password)."""
    errors: tuple[type[BaseException], ...] = ()
    """What the driver raises when the database fails (turned into ``LedgerError`` by the ledger)."""
    like = "LIKE"

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    # --- connections -------------------------------------------------------------------------

    def connection(self) -> Any:
        """This thread's connection (opened on first use); a DB-API connection in autocommit mode."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._unusable(conn):
            conn = self._open()
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._all.append(conn)
        return conn

    def _open(self) -> Any:
        raise NotImplementedError

    def _unusable(self, conn: Any) -> bool:
        """True for a connection closed (by ``close`` from another thread) or broken (a server restart)."""
        return False

    def close(self) -> None:
        """Close this thread's connection (and, where the driver allows it, every other thread's)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
        with self._lock:
            others, self._all = [c for c in self._all if c is not conn], []
        if conn is not None:
            conn.close()
        for other in others:
            self._close_other(other)

    def _close_other(self, conn: Any) -> None:
        """Close a connection of another thread, if the driver allows it."""

    # --- statements ----------------------------------------------------------------------------

    def sql(self, statement: str) -> str:
        """The statement in this driver's placeholder style (written with ``?``)."""
        return statement

    def execute(self, statement: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement on this thread's connection; returns the cursor."""
        return self.connection().execute(self.sql(statement), list(args))

    def fetch(self, statement: str, args: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], list[str]]:
        """A query's rows and column names (the fastest way this driver has to read many rows)."""
        cursor = self.execute(statement, args)
        return cursor.fetchall(), [d[0] for d in cursor.description]

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.connection().cursor().executemany(self.sql(statement), [list(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self, *, lock: bool = False) -> Iterator[Any]:
        """One transaction on this thread's connection; nested calls join the outer one.

        ``lock``: serialize with every other locked transaction on this database, in any process
        on any host (needed for claims and budget checks, which read then write).
        """
        conn = self.connection()
        if self._local.depth:
            if lock:
                self._lock_held(conn)
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        self._begin(conn, lock)
        conn = self.connection()  # the same one, or a new one if the old one was found broken
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            self._local.depth = 0
            with contextlib.suppress(*self.errors):
                conn.execute("ROLLBACK")
            raise
        self._local.depth = 0
        conn.execute("COMMIT")

    def _begin(self, conn: Any, lock: bool) -> None:
        raise NotImplementedError

    def _lock_held(self, conn: Any) -> None:
        """Make sure the serializing lock is held inside an already open transaction."""

    @property
    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    def page(self, limit: int | None, offset: int) -> str:
        """The LIMIT / OFFSET clause (with its leading space, or empty)."""
        if limit is not None:
            return f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return f" OFFSET {int(offset)}" if offset else ""

    # --- schema ------------------------------------------------------------------------------

    def version(self) -> int:
        raise NotImplementedError

    def set_version(self, number: int) -> None:
        raise NotImplementedError

    def migrate(self, migrations: Sequence[str], target: int) -> int:
        """Bring the schema to ``target`` (in one transaction, one process at a time); returns the version found."""
        with self.transaction(lock=True):
            found = self.version()
            for number in range(found, target):
                for statement in self.ddl(migrations[number]).split(";"):
                    if statement.strip():
                        self.execute(statement)
                self.set_version(number + 1)
        return found

    def ddl(self, script: str) -> str:
        """A migration script in this database's types (written for SQLite)."""
        return script

    def now(self) -> float:
        """Seconds since the epoch on the database's clock (the one every session's heartbeat is measured by)."""
        return time.time()

    def cause(self, exc: BaseException) -> tuple[str, str]:
        """(what went wrong, what to do) for an error met while using this store."""
        return _common_cause(exc) or (f"{type(exc).__name__}: {exc}", "check the ledger, or open another one")


def _common_cause(exc: BaseException) -> tuple[str, str] | None:
    text = str(exc).lower()
    if isinstance(exc, OverflowError) or "too large" in text or "out of range for type bigint" in text:
        return "a value does not fit the ledger (an integer beyond 64 bits)", "use a seed from -1 to 2147483647"
    if isinstance(exc, UnicodeError) or "surrogates not allowed" in text:
        return "the text holds characters that cannot be stored (a lone surrogate)", "remove them from the prompt"
    if "nul (0x00)" in text:
        return "the text holds a NUL character, which PostgreSQL cannot store", "remove it from the prompt"
    return None


class SqliteStore(Store):
    """An SQLite file in WAL mode: the embedded default, nothing to install, one machine."""

    kind = "sqlite"
    errors = (sqlite3.Error, OSError, OverflowError, UnicodeError)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.location = str(path)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _begin(self, conn: Any, lock: bool) -> None:
        conn.execute("BEGIN IMMEDIATE")  # one writer at a time: every transaction here is serialized

    def page(self, limit: int | None, offset: int) -> str:
        if limit is None and offset:
            return f" LIMIT -1 OFFSET {int(offset)}"
        return super().page(limit, offset)

    def version(self) -> int:
        return int(self.execute("PRAGMA user_version").fetchone()[0])

    def set_version(self, number: int) -> None:
        self.execute(f"PRAGMA user_version={int(number)}")

    def cause(self, exc: BaseException) -> tuple[str, str]:
        known = _common_cause(exc)
        if known is not None:
            return known
        text = str(exc).lower()
        number = getattr(exc, "errno", None)
        if "disk is full" in text or number == errno.ENOSPC:
            return "the disk is full", "free space on that disk, or point SEQNB_LEDGER at another disk"
        if "readonly" in text or "read-only" in text or number in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "the file is read-only", "make it writable, or open another path (SEQNB_LEDGER)"
        if "malformed" in text or "not a database" in text or "file is encrypted" in text:
            return (
                "the file is corrupt or not a seqnb ledger",
                "restore it from a backup or open another path; seqnb leaves the damaged file untouched",
            )
        if "locked" in text or "busy" in text:
            return "another process held the file locked too long", "try again; close other kernels writing to it"
        if "unable to open" in text or number in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            return "the file cannot be opened", "check that its folder exists and is writable, or open another path"
        return f"{type(exc).__name__}: {exc}", "check the file, or open another path (SEQNB_LEDGER)"


def redact(url: str) -> str:
    """The URL without its password (and without query options, which may hold one)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class PostgresStore(Store):
    """A PostgreSQL database shared by a team: many writers on many machines, through psycopg 3."""

    kind = "postgresql"
    like = "ILIKE"  # case-insensitive, as SQLite's LIKE is

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:
            raise LedgerError(
                f"ledger {redact(url)}: a PostgreSQL ledger needs psycopg 3: pip install 'seqnb[postgresql]' "
                "(or pip install 'psycopg[binary]')"
            ) from exc
        self._psycopg = psycopg
        self.url = url
        self.location = redact(url)
        parts = urlsplit(url)
        self._secret = parts.password or ""
        self.errors = (psycopg.Error, OSError, OverflowError, UnicodeError)

    def _open(self) -> psycopg.Connection[Any]:
        import psycopg

        options: dict[str, Any] = {"autocommit": True, "application_name": "seqnb"}
        if "connect_timeout" not in self.url:
            options["connect_timeout"] = CONNECT_TIMEOUT_S  # a deadline on the connection itself
        conn: psycopg.Connection[Any] = psycopg.connect(self.url, **options)
        try:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")  # and on every statement
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_other(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()

    def _unusable(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def execute(self, statement: str, args: Sequence[Any] = ()) -> Any:
        try:
            return super().execute(statement, args)
        except self._psycopg.OperationalError:
            # A connection the server dropped (a restart, an idle timeout) is seen broken only when used:
            # outside a transaction, open a new one and try once more (every statement here is idempotent).
            conn = getattr(self._local, "conn", None)
            if self.in_transaction or conn is None or not self._unusable(conn):
                raise
            return super().execute(statement, args)

    def fetch(self, statement: str, args: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], list[str]]:
        if self.in_transaction:
            return super().fetch(statement, args)
        # binary rows: a fifth faster to read than text for 100,000 runs (numbers arrive unparsed)
        conn = self.connection()
        try:
            cursor = conn.cursor(binary=True).execute(self.sql(statement), list(args))
        except self._psycopg.OperationalError:
            if not self._unusable(conn):
                raise
            cursor = self.connection().cursor(binary=True).execute(self.sql(statement), list(args))
        return cursor.fetchall(), [d[0] for d in cursor.description or ()]

    def _begin(self, conn: Any, lock: bool) -> None:
        try:
            conn.execute("BEGIN")
        except self._psycopg.OperationalError:
            if not self._unusable(conn):
                raise
            conn = self.connection()  # nothing was done yet: begin again on a new connection
            conn.execute("BEGIN")
        if lock:
            self._lock_held(conn)

    def _lock_held(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])  # released at COMMIT or ROLLBACK

    def ddl(self, script: str) -> str:
        # SQLite's REAL and INTEGER are 8 bytes; PostgreSQL's are 4: spell out the 8-byte ones
        return re.sub(r"\bINTEGER\b", "BIGINT", re.sub(r"\bREAL\b", "DOUBLE PRECISION", script))

    def version(self) -> int:
        # No CREATE here: this runs outside the migration lock, and PostgreSQL's CREATE TABLE IF NOT
        # EXISTS is not safe against another session doing the same (a unique violation in pg_type).
        # pg_tables is read with this statement's snapshot; to_regclass would read a catalog cache that a
        # session waiting on the migration lock may not have refreshed, and see no schema yet.
        exists = (
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'seqnb_schema')"
        )
        if not self.execute(exists).fetchone()[0]:
            return 0
        row = self.execute("SELECT version FROM seqnb_schema").fetchone()
        return int(row[0]) if row else 0

    def set_version(self, number: int) -> None:  # only inside migrate(), under the lock
        self.execute("CREATE TABLE IF NOT EXISTS seqnb_schema (version INTEGER NOT NULL)")
        self.execute("DELETE FROM seqnb_schema")
        self.execute("INSERT INTO seqnb_schema (version) VALUES (?)", [int(number)])

    def now(self) -> float:
        return float(self.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8").fetchone()[0])

    def cause(self, exc: BaseException) -> tuple[str, str]:
        known = _common_cause(exc)
        if known is not None:
            return known
        psycopg = self._psycopg
        text = str(exc).replace(self._secret, "***") if self._secret else str(exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        state = getattr(getattr(exc, "diag", None), "sqlstate", None) or ""
        if isinstance(exc, psycopg.OperationalError) and not state:
            return (
                f"cannot reach the PostgreSQL server ({first})",
                "check the URL, that the server runs and accepts this host, and the password "
                "(PGPASSWORD or ~/.pgpass; never in a notebook)",
            )
        if state == "53100":
            return "the database server's disk is full", "ask its administrator to free space"
        if state == "25006" or "read-only" in text:
            return "the database is read-only (a standby, or a read-only user)", "point the URL at the primary"
        if state.startswith("28") or state == "42501":
            return f"the database refused this user ({first})", "check the user name and its grants"
        if state in ("57014", "55P03"):
            return "another session held the ledger locked too long", "try again"
        if state.startswith("08") or state.startswith("57P"):
            return f"the connection to the database broke ({first})", "try again; check the server"
        return f"{type(exc).__name__}: {first}", "check the database, or open another ledger"
