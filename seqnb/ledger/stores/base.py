"""Where a ledger keeps its rows: an SQLite file (the embedded default) or a PostgreSQL database (for a team).

The ledger writes one SQL for both (``?`` placeholders, the types of ``MIGRATIONS``); a store says only what
differs: how to connect, how to open a transaction that serializes the checks that must be atomic, where the
schema version lives, whose clock is "now", and what a driver error means (``Store.guard``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ...errors import BudgetExceeded, LedgerError
from ...model.seeds import SEED_HINT

__all__ = ["Store", "chunks"]


class Store:
    """One kind of database behind a ledger: connections per thread, transactions, version, clock, errors."""

    kind = ""
    location = ""
    """Where the rows are, fit to print (a path, or a URL without its password)."""
    errors: tuple[type[BaseException], ...] = ()
    """What the driver raises when the database fails (turned into ``LedgerError`` by the ledger)."""
    like = "LIKE"
    concat = "group_concat"
    """The text aggregate joining a group's values with a separator: ``concat(value, ',')``."""
    day = "CAST(runs.created_at / 86400 AS INTEGER)"
    """A run's UTC day as whole days since the epoch (``spend(by="day")`` groups by it)."""
    shared_clock = False
    """Whether ``now`` is one clock for every session (a server's), so that heartbeats may be compared with it; else
    each writer's own clock, which no other session may compare with its own (``seqnb.ledger.sessions``)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    # --- connections -------------------------------------------------------------------------

    def connection(self) -> Any:
        """This thread's connection (opened on first use); a DB-API connection in autocommit mode."""
        conn = self.thread_connection()
        if conn is None or self.unusable(conn):
            conn = self.open_connection()
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._all.append(conn)
        return conn

    def thread_connection(self) -> Any:
        """This thread's connection as it is (None if it has none); never opens one."""
        return getattr(self._local, "conn", None)

    def open_connection(self) -> Any:
        """A new connection (the store's kind says how)."""
        raise NotImplementedError

    def unusable(self, conn: Any) -> bool:
        """True for a connection closed (by ``close`` from another thread) or broken (a server restart)."""
        return False

    def close(self) -> None:
        """Close this thread's connection (and, where the driver allows it, every other thread's)."""
        conn = self.thread_connection()
        if conn is not None:
            self._local.conn = None
        with self._lock:
            others, self._all = [c for c in self._all if c is not conn], []
        if conn is not None:
            conn.close()
        for other in others:
            self.close_other(other)

    def close_other(self, conn: Any) -> None:
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
                self.hold_lock(conn)
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        self.begin(conn, lock)
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

    def begin(self, conn: Any, lock: bool) -> None:
        raise NotImplementedError

    def hold_lock(self, conn: Any) -> None:
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
        """Seconds since the epoch on the database's clock: the server's if ``shared_clock``, else this process's."""
        return time.time()

    def cause(self, exc: BaseException) -> tuple[str, str]:
        """(what went wrong, what to do) for an error of this store's own kind (``common_cause`` comes first)."""
        return f"{type(exc).__name__}: {exc}", "check the ledger, or open another one"

    @contextlib.contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """Turn any failure of this store into a ``LedgerError`` that names the cause and the fix."""
        try:
            yield
        except (LedgerError, BudgetExceeded):
            raise
        except self.errors as exc:
            cause, fix = common_cause(exc) or self.cause(exc)
            raise LedgerError(f"ledger {self.location}: cannot {doing}: {cause}; {fix}") from exc


def common_cause(exc: BaseException) -> tuple[str, str] | None:
    """(what went wrong, what to do) for the failures every store meets alike, else None."""
    text = str(exc).lower()
    if isinstance(exc, OverflowError) or "too large" in text or "out of range for type bigint" in text:
        return "a value does not fit the ledger (an integer beyond 64 bits)", SEED_HINT
    if isinstance(exc, UnicodeError) or "surrogates not allowed" in text:
        return "the text holds characters that cannot be stored (a lone surrogate)", "remove them from the prompt"
    if "nul (0x00)" in text:
        return "the text holds a NUL character, which PostgreSQL cannot store", "remove it from the prompt"
    return None


def chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """``items`` ``size`` at a time, for one ``IN (...)`` each: far below either store's limit on bound parameters."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
