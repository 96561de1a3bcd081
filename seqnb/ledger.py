"""The ledger: every run in an SQLite file, pandas views over it, sessions that own the runs they watch.

The file is the store (WAL mode, one row per run, one per image); DataFrames are views
(``seqnb.ledger_frames``, pandas loads on first use). Write-ahead means write-or-refuse: a new
run's row is written before its submit may leave, and if it cannot be written (disk full,
read-only or corrupt file, a value that does not fit) the submit does not leave and the caller
gets a ``LedgerError`` naming the cause. Later writes that fail are kept and retried, and shown
on the run (``run.note``) and by ``Ledger.health()``; they are never swallowed.

Each client attached to a ledger is a *session* (a row in ``sessions`` with user, host, pid and
a heartbeat); it owns the runs it records. ``Client.resume`` takes over only runs whose session
is gone (ended, its process dead, or its heartbeat stale), so two live kernels never watch one
run, and a run that another live kernel has not sent yet is never called "not sent".
The token is never stored: only the backend's kind and base URL.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import getpass
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LedgerError
from .request import Request
from .runs import ACTIVE, AsyncRun, RunCore, RunEvent

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncClient, Backend, Client

__all__ = ["DEFAULT_LEDGER", "SCHEMA_VERSION", "Ledger", "Recorder", "SessionInfo"]

log = logging.getLogger("seqnb.ledger")

DEFAULT_LEDGER = "seqnb-ledger.sqlite"
HEARTBEAT_SECONDS = 10.0
"""How often a session says it is alive; one silent for three beats is taken as gone."""

# Each entry moves the schema one version up; never edit a released one, append.
MIGRATIONS: list[str] = [
    # 1: the first release
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        request_id TEXT,
        backend TEXT NOT NULL,
        base_url TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT,
        seed INTEGER,
        size TEXT,
        requested INTEGER NOT NULL,
        returned INTEGER,
        options TEXT NOT NULL DEFAULT '{}',
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        created_at REAL NOT NULL,
        submitted_at REAL,
        started_at REAL,
        finished_at REAL,
        server_created_at TEXT,
        server_finished_at TEXT,
        est_cost TEXT,
        currency TEXT,
        sweep_id TEXT,
        updated_at REAL NOT NULL
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE INDEX runs_sweep ON runs(sweep_id);
    CREATE INDEX runs_created ON runs(created_at);
    CREATE TABLE images (
        run_id TEXT NOT NULL REFERENCES runs(id),
        idx INTEGER NOT NULL,
        url TEXT,
        path TEXT,
        width INTEGER,
        height INTEGER,
        bytes INTEGER,
        sha256 TEXT,
        PRIMARY KEY (run_id, idx)
    );
    """,
    # 2: annotations and lineage
    """
    ALTER TABLE runs ADD COLUMN parent_id TEXT;
    ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
    ALTER TABLE images ADD COLUMN state TEXT NOT NULL DEFAULT 'remote';
    """,
    # 3: the gallery's consistency score per series
    """
    ALTER TABLE runs ADD COLUMN consistency REAL;
    """,
    # 4: who watches a run (a session: one client attached to this ledger, in one process on one host)
    """
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN default_seed INTEGER;
    CREATE INDEX runs_owner ON runs(owner);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user TEXT,
        host TEXT,
        pid INTEGER,
        kernel TEXT,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        ended_at REAL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

_RUN_COLUMNS = (
    "id", "request_id", "backend", "base_url", "model", "prompt", "seed", "size", "requested", "returned",
    "options", "payload", "status", "error", "created_at", "submitted_at", "started_at", "finished_at",
    "server_created_at", "server_finished_at", "est_cost", "currency", "sweep_id", "updated_at", "parent_id", "note",
    "owner", "default_seed",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in _RUN_COLUMNS if c != 'id')}"
)
_RESUMABLE = ("created", "submitting", *ACTIVE)
_INT64 = range(-(2**63), 2**63)


def _cause(exc: BaseException) -> tuple[str, str]:
    """(what went wrong, what to do) for an error met while using the ledger file."""
    text = str(exc).lower()
    number = getattr(exc, "errno", None)
    if isinstance(exc, OverflowError) or "too large" in text:
        return "a value does not fit the ledger (an integer beyond 64 bits)", "use a seed from -1 to 2147483647"
    if isinstance(exc, UnicodeError) or "surrogates not allowed" in text:
        return "the text holds characters that cannot be stored (a lone surrogate)", "remove them from the prompt"
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


_FILE_ERRORS = (sqlite3.Error, OSError, OverflowError, UnicodeError)


@dataclass(frozen=True)
class SessionInfo:
    """Who and where a session runs: user, host, process, and the notebook kernel when known."""

    id: str
    user: str
    host: str
    pid: int
    kernel: str | None

    @classmethod
    def here(cls) -> SessionInfo:
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = "unknown"
        kernel = os.environ.get("JPY_SESSION_NAME") or None
        return cls("se-" + uuid.uuid4().hex[:12], user, socket.gethostname(), os.getpid(), kernel)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    """An SQLite file of every run; ``Ledger()`` opens ``$SEQNB_LEDGER`` or ``./seqnb-ledger.sqlite``."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.path = Path(path or os.environ.get("SEQNB_LEDGER") or DEFAULT_LEDGER).expanduser()
        self.heartbeat = heartbeat
        self._local = threading.local()
        self._recorders: list[Recorder] = []
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        with self._guard("open"):
            self._migrate()
        _OPEN.add(self)

    # --- storage -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn any failure of the file into a ``LedgerError`` that names the cause and the fix."""
        try:
            yield
        except LedgerError:
            raise
        except _FILE_ERRORS as exc:
            cause, fix = _cause(exc)
            raise LedgerError(f"ledger {self.path}: cannot {doing}: {cause}; {fix}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            try:
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger {self.path} has schema {version}, newer than this seqnb's {SCHEMA_VERSION}: "
                    "upgrade seqnb (pip install -U seqnb), or open another path"
                )
            for number in range(version, target):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number + 1}")

    @property
    def version(self) -> int:
        with self._guard("read"):
            return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """End this ledger's sessions (their runs may then be resumed elsewhere) and close the file."""
        for recorder in list(self._recorders):
            recorder.end()
        self._beat_stop.set()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- sessions ----------------------------------------------------------------------------

    def open_session(self) -> SessionInfo:
        """Register a new session (one client attached here) and keep its heartbeat going."""
        info = SessionInfo.here()
        now = time.time()
        with self._guard("register a session"), self._transaction() as conn:
            conn.execute(
                "INSERT INTO sessions (id, user, host, pid, kernel, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (info.id, info.user, info.host, info.pid, info.kernel, now, now),
            )
        self._start_heartbeat()
        return info

    def end_session(self, session: str) -> None:
        with contextlib.suppress(LedgerError), self._guard("end a session"):
            self._connect().execute(
                "UPDATE sessions SET ended_at=? WHERE id=? AND ended_at IS NULL", (time.time(), session)
            )

    def _start_heartbeat(self) -> None:
        if self._beat_thread is not None and self._beat_thread.is_alive():
            return
        self._beat_stop.clear()
        ref = weakref.ref(self)
        stop, interval = self._beat_stop, self.heartbeat

        def beat() -> None:  # holds the ledger only while beating, so an unused one can be collected
            while not stop.wait(interval):
                ledger = ref()
                if ledger is None:
                    return
                ledger._beat()
                del ledger

        self._beat_thread = threading.Thread(target=beat, name="seqnb-ledger-heartbeat", daemon=True)
        self._beat_thread.start()

    def _beat(self) -> None:
        ids = [r.session.id for r in self._recorders if not r.ended]
        if not ids:
            return
        try:
            self._connect().execute(
                f"UPDATE sessions SET heartbeat_at=? WHERE id IN ({', '.join('?' * len(ids))})", (time.time(), *ids)
            )
        except _FILE_ERRORS as exc:  # a missed beat only makes this session look older; the next one may pass
            log.debug("ledger heartbeat failed: %s", exc)

    def live_sessions(self) -> set[str]:
        """The sessions that are still alive: not ended, and on this host with a live process or else beating."""
        here = socket.gethostname()
        stale = time.time() - 3 * self.heartbeat
        with self._guard("read sessions"):
            rows = (
                self._connect()
                .execute("SELECT id, host, pid, heartbeat_at FROM sessions WHERE ended_at IS NULL")
                .fetchall()
            )
        live = set()
        for session, host, pid, beat in rows:
            if host == here and pid is not None:
                alive = _pid_alive(int(pid)) and (int(pid) != os.getpid() or beat >= stale or self._ours(session))
            else:
                alive = beat >= stale
            if alive:
                live.add(session)
        return live

    def _ours(self, session: str) -> bool:
        return any(r.session.id == session and not r.ended for r in self._recorders)

    # --- recording ---------------------------------------------------------------------------

    def attach(self, client: Client | AsyncClient) -> Ledger:
        """Record every run of this client from now on (and the ones it already has), as a new session."""
        aio: AsyncClient = client.aio if hasattr(client, "aio") else client
        recorder = Recorder(self, aio.backend, self.open_session())
        self._recorders.append(recorder)
        aio.ledger = self
        aio.recorder = recorder
        aio.subscribe(recorder.on_event)
        for run in aio.runs():
            recorder.record(run)
        return self

    def record(self, run: RunCore, backend: Backend, owner: str | None = None, status: str | None = None) -> None:
        """Write the run's row (with ``status`` instead of its own, if given); idempotent. Raises ``LedgerError``."""
        request = run.request
        resolved = request.resolved()
        cost = request.cost()
        seed = request.sent_seed  # the seed sent; the model's default goes apart, when none was sent
        default_seed = resolved.get("seed") if seed is None else None
        if isinstance(seed, int) and seed not in _INT64:
            raise LedgerError(
                f"ledger {self.path}: cannot record run {run.id}: seed {seed} does not fit a 64-bit integer; "
                "use a seed from -1 to 2147483647"
            )
        row = (
            run.id, run.request_id, backend.kind, backend.base_url, run.model, request.prompt,
            seed, resolved.get("size"), run.requested, run.returned,
            json.dumps({k: v for k, v in resolved.items() if k not in ("model", "prompt", "seed", "size", "count")}, sort_keys=True, default=str),
            json.dumps(request.payload(), sort_keys=True, ensure_ascii=False),
            status or run.status, run.error, run.created_at, run.submitted_at, run.started_at, run.finished_at,
            run.server_created_at, run.server_finished_at, str(cost.amount), cost.currency, run.sweep_id,
            time.time(), run.parent_id, run.note, owner, default_seed,
        )  # fmt: skip
        with self._guard(f"record run {run.id}"), self._transaction() as conn:
            conn.execute(_UPSERT, row)
            if run.status == "completed" and run.images:
                conn.executemany(
                    "INSERT INTO images (run_id, idx, url) VALUES (?, ?, ?) "
                    "ON CONFLICT(run_id, idx) DO UPDATE SET url=excluded.url WHERE images.path IS NULL",
                    [(run.id, i, url) for i, url in enumerate(run.images)],
                )

    def record_image(self, run_id: str, idx: int, **fields: Any) -> None:
        """Update one image row (local path, size, hash, state) after the gallery fetched it."""
        allowed = {"url", "path", "width", "height", "bytes", "sha256", "state"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown image fields {sorted(unknown)}; use {sorted(allowed)}")
        sets = ", ".join(f"{k}=?" for k in fields)
        with self._guard(f"record an image of run {run_id}"):
            self._connect().execute(
                f"UPDATE images SET {sets} WHERE run_id=? AND idx=?", (*fields.values(), run_id, idx)
            )

    def set_consistency(self, run_id: str, score: float | None) -> None:
        """Store a series' consistency score (see ``seqnb.consistency``)."""
        with self._guard(f"record the consistency of run {run_id}"):
            self._connect().execute("UPDATE runs SET consistency=? WHERE id=?", (score, run_id))

    def annotate(self, run_id: str, *, note: str | None = None, tags: Iterable[str] | None = None) -> None:
        """Attach a free-text note and tags to a run."""
        with self._guard(f"annotate run {run_id}"), self._transaction() as conn:
            if note is not None:
                conn.execute("UPDATE runs SET note=? WHERE id=?", (note, run_id))
            if tags is not None:
                conn.execute("UPDATE runs SET tags=? WHERE id=?", (json.dumps(sorted(set(tags))), run_id))

    def health(self) -> str | None:
        """None when every run this ledger was told about is written; else what is not, and why."""
        unsaved = [(r, run_id) for r in self._recorders for run_id in r.unsaved]
        if not unsaved:
            return None
        error = next((r.last_error for r, _ in unsaved if r.last_error is not None), None)
        return f"{len(unsaved)} run(s) not yet written to the ledger (retrying): {error}"

    def flush(self) -> None:
        """Write again every change a failed write left behind; raises ``LedgerError`` if it still fails."""
        for recorder in self._recorders:
            recorder.flush(raise_errors=True)

    # --- reading -----------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any] = ()) -> tuple[list[tuple[Any, ...]], list[str]]:
        with self._guard("read"):
            cursor = self._connect().execute(sql, list(args))
            return cursor.fetchall(), [d[0] for d in cursor.description]

    def runs(
        self,
        *,
        model: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        sweep: str | None = None,
        text: str | None = None,
        since: Any = None,
        until: Any = None,
        ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """One row per run, newest first, with proper dtypes; filters combine with AND; ``limit``/``offset`` page."""
        from .ledger_frames import frame_of

        where, args = self._where(model=model, status=status, sweep=sweep, text=text, since=since, until=until, ids=ids)
        sql = "SELECT * FROM runs" + where + " ORDER BY created_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            sql += f" LIMIT -1 OFFSET {int(offset)}"
        return frame_of(*self._query(sql, args))

    def count(self, **filters: Any) -> int:
        """How many runs match the filters of ``runs`` (one query, no rows loaded)."""
        where, args = self._where(**filters)
        rows, _ = self._query("SELECT COUNT(*) FROM runs" + where, args)
        return int(rows[0][0])

    def _where(
        self,
        *,
        model: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        sweep: str | None = None,
        text: str | None = None,
        since: Any = None,
        until: Any = None,
        ids: Sequence[str] | None = None,
    ) -> tuple[str, list[Any]]:
        """The WHERE clause (with its leading space, or empty) and its arguments, for the ``runs`` filters."""
        from .ledger_frames import epoch
        from .spec import get_model

        where: list[str] = []
        args: list[Any] = []

        def among(column: str, values: str | Sequence[str]) -> None:
            items = [values] if isinstance(values, str) else list(values)
            where.append(f"{column} IN ({', '.join('?' * len(items))})" if items else "0")
            args.extend(items)

        if model is not None:
            among("model", [get_model(m).id for m in ([model] if isinstance(model, str) else model)])
        if status is not None:
            among("status", status)
        if sweep is not None:
            where.append("sweep_id = ?")
            args.append(sweep)
        if ids is not None:
            among("id", ids)
        if text:
            where.append("prompt LIKE ? ESCAPE '\\'")
            args.append("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        if since is not None:
            where.append("created_at >= ?")
            args.append(epoch(since))
        if until is not None:
            where.append("created_at < ?")
            args.append(epoch(until))
        return (f" WHERE {' AND '.join(where)}" if where else ""), args

    def sweeps(self) -> list[str]:
        """The sweep ids in the ledger, newest first."""
        rows, _ = self._query(
            "SELECT sweep_id FROM runs WHERE sweep_id IS NOT NULL GROUP BY sweep_id ORDER BY MAX(created_at) DESC"
        )
        return [r[0] for r in rows]

    def images(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per image (in frame order), for one run or all."""
        from .ledger_frames import images_frame

        sql = "SELECT * FROM images" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY run_id, idx"
        return images_frame(*self._query(sql, (run_id,) if run_id else ()))

    def compare(self, runs: Any) -> pd.DataFrame:
        """Runs side by side: only the parameters that differ between them, then the outcomes."""
        from .ledger_frames import compare

        return compare(self._select(runs))

    def spend(self, by: str | Sequence[str] = "model", **filters: Any) -> pd.DataFrame:
        """Estimated spend grouped by model, day, sweep, status, currency or backend (any combination).

        ``charged``: completed runs on RunComfy (billed on the count asked); ``simulated``: completed
        runs on seqnb's emulator (nothing charged); ``in_flight``: not yet ended; ``in_doubt``:
        submits that may have reached the service (``unknown``).
        """
        from .ledger_frames import spend

        return spend(self.runs(**filters), by)

    def export(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the runs to CSV, JSON or Parquet, chosen by the file's extension."""
        from .ledger_frames import export

        return export(self.runs(**filters), path)

    def _select(self, runs: Any) -> pd.DataFrame:
        if isinstance(runs, str):
            frame = self.runs(sweep=runs)
            if frame.empty:
                frame = self.runs(ids=[runs])
            return frame
        if hasattr(runs, "columns"):  # already a frame of runs
            given: pd.DataFrame = runs
            return given
        ids = [r if isinstance(r, str) else r.id for r in runs]
        return self.runs(ids=ids)

    # --- bringing runs back ----------------------------------------------------------------

    def pending(self) -> pd.DataFrame:
        """Runs not yet ended (what a resume could pick up, whoever watches them now)."""
        return self.runs(status=list(_RESUMABLE))

    def restore(self, run_id: str) -> AsyncRun:
        """A run object rebuilt from its row (not attached to any client)."""
        rows, columns = self._query("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise LedgerError(f"no run {run_id!r} in ledger {self.path}: check the id (ledger.runs() lists them)")
        record = dict(zip(columns, rows[0], strict=True))
        images, _ = self._query("SELECT url FROM images WHERE run_id=? ORDER BY idx", (run_id,))
        try:
            request = Request.from_payload(record["model"], json.loads(record["payload"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise LedgerError(f"ledger {self.path}: run {run_id} has an unreadable request ({exc})") from exc
        return AsyncRun(
            request=request,
            id=record["id"],
            request_id=record["request_id"],
            status=record["status"],
            error=record["error"],
            images=[u for (u,) in images if u],
            created_at=record["created_at"],
            submitted_at=record["submitted_at"],
            started_at=record["started_at"],
            finished_at=record["finished_at"],
            server_created_at=record["server_created_at"],
            server_finished_at=record["server_finished_at"],
            sweep_id=record["sweep_id"],
            parent_id=record["parent_id"],
            note=record["note"] or "",
        )

    def claim(self, session: str) -> list[AsyncRun]:
        """Take over the runs not yet ended whose session is gone; returns them rebuilt, now owned by ``session``.

        A run another live session owns is left alone (it is being watched, or its submit is
        being sent); the claim is atomic, so two resuming sessions never both take one run.
        """
        live = self.live_sessions()
        with self._guard("claim runs to resume"), self._transaction() as conn:
            rows = conn.execute(
                f"SELECT id, owner FROM runs WHERE status IN ({', '.join('?' * len(_RESUMABLE))}) ORDER BY created_at",
                _RESUMABLE,
            ).fetchall()
            taken = [run_id for run_id, owner in rows if owner is None or (owner not in live and owner != session)]
            conn.executemany("UPDATE runs SET owner=? WHERE id=?", [(session, run_id) for run_id in taken])
        return [self.restore(run_id) for run_id in taken]

    def __repr__(self) -> str:
        return f"<seqnb.Ledger {self.path}>"


class Recorder:
    """What one client writes into a ledger: its session, and its runs' rows (see ``Ledger.attach``)."""

    def __init__(self, ledger: Ledger, backend: Backend, session: SessionInfo) -> None:
        self.ledger = ledger
        self.backend = backend
        self.session = session
        self.unsaved: dict[str, RunCore] = {}
        """Runs whose latest change could not be written yet (retried on every later change and by ``flush``)."""
        self.last_error: LedgerError | None = None
        self.ended = False

    def record(self, run: RunCore, status: str | None = None) -> None:
        """Write a run's row now; raises ``LedgerError`` (the caller must then not send its submit)."""
        self.ledger.record(run, self.backend, self.session.id, status)

    def on_event(self, event: RunEvent) -> None:
        """Write every change after the submit; a failure is kept, retried and shown, never lost or raised."""
        if event.detail == "created" or (event.new == "submitting" and event.old == "created"):
            return  # written, or refused, by the client itself before anything may leave
        self.unsaved[event.run.id] = event.run
        self.flush()

    def flush(self, raise_errors: bool = False) -> None:
        for run_id, run in list(self.unsaved.items()):
            try:
                self.record(run)
            except LedgerError as exc:
                if self.last_error is None or str(exc) != str(self.last_error):
                    log.error("%s (seqnb keeps it and retries on the next change)", exc)
                self.last_error = exc
                run.note = f"NOT YET IN THE LEDGER ({exc}); seqnb retries on every change"
                if raise_errors:
                    raise
                return
            del self.unsaved[run_id]
            if run.note.startswith("NOT YET IN THE LEDGER"):
                run.note = ""
        self.last_error = None

    def end(self) -> None:
        """End this session: its runs in flight may be resumed by another session from now on."""
        if self.ended:
            return
        self.flush()
        self.ended = True
        self.ledger.end_session(self.session.id)
        if self in self.ledger._recorders:
            self.ledger._recorders.remove(self)


@atexit.register
def _end_sessions_at_exit() -> None:
    for ledger in list(_OPEN):
        for recorder in list(ledger._recorders):
            with contextlib.suppress(Exception):
                recorder.end()


_OPEN: weakref.WeakSet[Ledger] = weakref.WeakSet()
