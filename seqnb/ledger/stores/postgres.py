"""A ledger in a PostgreSQL database, shared by a team: many writers on many machines, through psycopg 3.

What differs from SQLite (``seqnb.ledger.stores.base``): ``%s`` placeholders, a transaction-level advisory
lock to serialize claims and budget checks, the schema version in a table, 8-byte types, the
server's clock, and what its errors mean. psycopg is imported only when such a ledger is opened.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ...errors import LedgerError
from .base import Store

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore", "redact"]

T = TypeVar("T")

LOCK_KEY = 0x5E0_1ED6E
"""The PostgreSQL advisory lock that serializes migrations, claims and budget checks (one per database)."""
STATEMENT_TIMEOUT_MS = 30_000
"""No statement (a lock wait included) runs longer than this on PostgreSQL, as SQLite's busy timeout."""
CONNECT_TIMEOUT_S = 10


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
    concat = "string_agg"
    day = "FLOOR(runs.created_at / 86400)"  # a cast would round, not cut
    shared_clock = True  # now() is the server's, for every session on every machine

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

    def open_connection(self) -> psycopg.Connection[Any]:
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

    def close_other(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()

    def unusable(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _once_more(self, attempt: Callable[[Any], T]) -> T:
        """``attempt`` on this thread's connection. One the server dropped (a restart, an idle timeout) is seen broken
        only when used: outside a transaction, try once more on a new one (every statement here is idempotent)."""
        conn = self.connection()
        try:
            return attempt(conn)
        except self._psycopg.OperationalError:
            if self.in_transaction or not self.unusable(conn):
                raise
            return attempt(self.connection())

    def execute(self, statement: str, args: Sequence[Any] = ()) -> Any:
        return self._once_more(lambda conn: conn.execute(self.sql(statement), list(args)))

    def fetch(self, statement: str, args: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], list[str]]:
        if self.in_transaction:
            return super().fetch(statement, args)
        # binary rows: a fifth faster to read than text for 100,000 runs (numbers arrive unparsed)
        cursor = self._once_more(lambda conn: conn.cursor(binary=True).execute(self.sql(statement), list(args)))
        return cursor.fetchall(), [d[0] for d in cursor.description or ()]

    def begin(self, conn: Any, lock: bool) -> None:
        self._once_more(lambda fresh: fresh.execute("BEGIN"))  # nothing was done yet: a new connection may begin
        if lock:
            self.hold_lock(self.connection())

    def hold_lock(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])  # released at COMMIT or ROLLBACK

    def ddl(self, script: str) -> str:
        # SQLite's REAL and INTEGER are 8 bytes; PostgreSQL's are 4: spell out the 8-byte ones
        script = script.replace("INTEGER PRIMARY KEY", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
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
