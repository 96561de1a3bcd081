"""The ledger: every run in an SQLite file, pandas views over it, and resume after a restart.

The file is the store (WAL mode, one row per run, one per image); DataFrames are views. A run is
written when it is created, before its submit leaves, and rewritten on every change its client
reports, so a crash or a kernel restart loses nothing and ``resume`` can re-attach to the runs
that were still in flight. The token is never stored: only the backend's kind and base URL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .request import Request
from .runs import ACTIVE, AsyncRun, RunCore, RunEvent

if TYPE_CHECKING:
    from .client import AsyncClient, Backend, Client

__all__ = ["DEFAULT_LEDGER", "SCHEMA_VERSION", "Ledger"]

DEFAULT_LEDGER = "seqnb-ledger.sqlite"

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
]
SCHEMA_VERSION = len(MIGRATIONS)

_RUN_COLUMNS = (
    "id", "request_id", "backend", "base_url", "model", "prompt", "seed", "size", "requested", "returned",
    "options", "payload", "status", "error", "created_at", "submitted_at", "started_at", "finished_at",
    "server_created_at", "server_finished_at", "est_cost", "currency", "sweep_id", "updated_at", "parent_id", "note",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in _RUN_COLUMNS if c != 'id')}"
)
_RESUMABLE = ("created", "submitting", *ACTIVE)


class Ledger:
    """An SQLite file of every run; ``Ledger()`` opens ``$SEQNB_LEDGER`` or ``./seqnb-ledger.sqlite``."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path or os.environ.get("SEQNB_LEDGER") or DEFAULT_LEDGER).expanduser()
        self._local = threading.local()
        self._migrate()

    # --- storage -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has ledger schema {version}, newer than this seqnb's {SCHEMA_VERSION}: upgrade seqnb"
                )
            for number in range(version, target):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def version(self) -> int:
        return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- recording ---------------------------------------------------------------------------

    def attach(self, client: Client | AsyncClient) -> Ledger:
        """Record every run of this client from now on (and the ones it already has)."""
        aio: AsyncClient = client.aio if hasattr(client, "aio") else client
        backend = aio.backend
        aio.ledger = self

        def on_event(event: RunEvent) -> None:
            self.record(event.run, backend)

        aio.subscribe(on_event)
        for run in aio.runs():
            self.record(run, backend)
        return self

    def record(self, run: RunCore, backend: Backend) -> None:
        """Write the run's row (and its images once completed); idempotent."""
        request = run.request
        resolved = request.resolved()
        cost = request.cost()
        row = (
            run.id, run.request_id, backend.kind, backend.base_url, run.model, request.prompt,
            resolved.get("seed"), resolved.get("size"), run.requested, run.returned,
            json.dumps({k: v for k, v in resolved.items() if k not in ("model", "prompt", "seed", "size", "count")}, sort_keys=True, default=str),
            json.dumps(request.payload(), sort_keys=True, ensure_ascii=False),
            run.status, run.error, run.created_at, run.submitted_at, run.started_at, run.finished_at,
            run.server_created_at, run.server_finished_at, str(cost.amount), cost.currency, run.sweep_id,
            time.time(), run.parent_id, run.note,
        )  # fmt: skip
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_UPSERT, row)
            if run.status == "completed" and run.images:
                conn.executemany(
                    "INSERT INTO images (run_id, idx, url) VALUES (?, ?, ?) "
                    "ON CONFLICT(run_id, idx) DO UPDATE SET url=excluded.url WHERE images.path IS NULL",
                    [(run.id, i, url) for i, url in enumerate(run.images)],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def record_image(self, run_id: str, idx: int, **fields: Any) -> None:
        """Update one image row (local path, size, hash, state) after the gallery fetched it."""
        allowed = {"url", "path", "width", "height", "bytes", "sha256", "state"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown image fields {sorted(unknown)}; use {sorted(allowed)}")
        sets = ", ".join(f"{k}=?" for k in fields)
        self._connect().execute(f"UPDATE images SET {sets} WHERE run_id=? AND idx=?", (*fields.values(), run_id, idx))

    def set_consistency(self, run_id: str, score: float | None) -> None:
        """Store a series' consistency score (see ``seqnb.gallery.consistency``)."""
        self._connect().execute("UPDATE runs SET consistency=? WHERE id=?", (score, run_id))

    def annotate(self, run_id: str, *, note: str | None = None, tags: Iterable[str] | None = None) -> None:
        """Attach a free-text note and tags to a run."""
        conn = self._connect()
        if note is not None:
            conn.execute("UPDATE runs SET note=? WHERE id=?", (note, run_id))
        if tags is not None:
            conn.execute("UPDATE runs SET tags=? WHERE id=?", (json.dumps(sorted(set(tags))), run_id))

    # --- reading -----------------------------------------------------------------------------

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
        where, args = self._where(model=model, status=status, sweep=sweep, text=text, since=since, until=until, ids=ids)
        sql = "SELECT * FROM runs" + where + " ORDER BY created_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            sql += f" LIMIT -1 OFFSET {int(offset)}"
        cursor = self._connect().execute(sql, args)
        columns = [d[0] for d in cursor.description]
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
        return _typed(frame)

    def count(self, **filters: Any) -> int:
        """How many runs match the filters of ``runs`` (one query, no rows loaded)."""
        where, args = self._where(**filters)
        return int(self._connect().execute("SELECT COUNT(*) FROM runs" + where, args).fetchone()[0])

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
        from .spec import get_model

        where: list[str] = []
        args: list[Any] = []

        def among(column: str, values: str | Sequence[str]) -> None:
            items = [values] if isinstance(values, str) else list(values)
            where.append(f"{column} IN ({', '.join('?' * len(items))})")
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
            args.append(_epoch(since))
        if until is not None:
            where.append("created_at < ?")
            args.append(_epoch(until))
        return (f" WHERE {' AND '.join(where)}" if where else ""), args

    def sweeps(self) -> list[str]:
        """The sweep ids in the ledger, newest first."""
        rows = self._connect().execute(
            "SELECT sweep_id FROM runs WHERE sweep_id IS NOT NULL GROUP BY sweep_id ORDER BY MAX(created_at) DESC"
        )
        return [r[0] for r in rows]

    def images(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per image (in frame order), for one run or all."""
        sql = "SELECT * FROM images" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY run_id, idx"
        cursor = self._connect().execute(sql, (run_id,) if run_id else ())
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=[d[0] for d in cursor.description])
        for col in ("idx", "width", "height", "bytes"):
            frame[col] = frame[col].astype("Int64")
        for col in ("run_id", "url", "path", "sha256", "state"):
            frame[col] = frame[col].astype("string")
        return frame

    def compare(self, runs: Any) -> pd.DataFrame:
        """Runs side by side: only the parameters that differ between them, then the outcomes."""
        frame = self._select(runs)
        params = ["model", "prompt", "seed", "size", "requested", "options"]
        differing = [c for c in params if frame[c].astype("string").nunique(dropna=False) > 1]
        outcomes = ["status", "returned", "queue_s", "run_s", "est_cost", "currency", "error"]
        if "consistency" in frame:
            outcomes.insert(2, "consistency")
        return frame.set_index("id")[differing + outcomes]

    def spend(self, by: str | Sequence[str] = "model", **filters: Any) -> pd.DataFrame:
        """Estimated spend grouped by model, day, sweep or status (any combination).

        ``charged``: completed runs (billed on the count asked); ``in_flight``: queued or running;
        ``in_doubt``: submits that may have reached the service (``unknown``).
        """
        frame = self.runs(**filters)
        keys = [by] if isinstance(by, str) else list(by)
        frame = frame.assign(
            day=frame["created_at"].dt.tz_convert("UTC").dt.date.astype("string"),
            sweep=frame["sweep_id"],
            charged=frame["est_cost"].where(frame["status"] == "completed", 0.0),
            in_flight=frame["est_cost"].where(frame["status"].isin(list(_RESUMABLE)), 0.0),
            in_doubt=frame["est_cost"].where(frame["status"] == "unknown", 0.0),
            images=frame["requested"],
        )
        unknown = set(keys) - {"model", "day", "sweep", "status", "currency", "backend"}
        if unknown:
            raise ValueError(
                f"spend(by=...) takes model, day, sweep, status, currency or backend, not {sorted(unknown)}"
            )
        grouped = frame.groupby([*keys, "currency"], observed=True, dropna=False)
        out = grouped.agg(
            runs=("id", "size"),
            images=("images", "sum"),
            charged=("charged", "sum"),
            in_flight=("in_flight", "sum"),
            in_doubt=("in_doubt", "sum"),
        )
        return out.reset_index()

    def export(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the runs to CSV, JSON or Parquet, chosen by the file's extension."""
        target = Path(path)
        frame = self.runs(**filters)
        suffix = target.suffix.lower()
        if suffix == ".csv":
            frame.to_csv(target, index=False)
        elif suffix == ".json":
            frame.to_json(target, orient="records", date_format="iso", indent=1)
        elif suffix == ".parquet":
            if importlib.util.find_spec("pyarrow") is None:
                raise RuntimeError("Parquet export needs pyarrow: pip install pyarrow (or export to .csv / .json)")
            frame.to_parquet(target, index=False)
        else:
            raise ValueError(f"cannot export to {target.name!r}: use a .csv, .json or .parquet file name")
        return target

    def _select(self, runs: Any) -> pd.DataFrame:
        if isinstance(runs, str):
            frame = self.runs(sweep=runs)
            if frame.empty:
                frame = self.runs(ids=[runs])
            return frame
        if isinstance(runs, pd.DataFrame):
            return runs
        ids = [r if isinstance(r, str) else r.id for r in runs]
        return self.runs(ids=ids)

    # --- bringing runs back ----------------------------------------------------------------

    def pending(self) -> pd.DataFrame:
        """Runs not yet ended (what ``resume`` would pick up)."""
        return self.runs(status=list(_RESUMABLE))

    def restore(self, run_id: str) -> AsyncRun:
        """A run object rebuilt from its row (not attached to any client)."""
        row = self._connect().execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        cursor = self._connect().execute("SELECT * FROM runs LIMIT 0")
        record = dict(zip([d[0] for d in cursor.description], row, strict=True))
        request = Request.from_payload(record["model"], json.loads(record["payload"]))
        images = [
            u for (u,) in self._connect().execute("SELECT url FROM images WHERE run_id=? ORDER BY idx", (run_id,))
        ]
        return AsyncRun(
            request=request,
            id=record["id"],
            request_id=record["request_id"],
            status=record["status"],
            error=record["error"],
            images=images,
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

    def pending_runs(self) -> list[AsyncRun]:
        """The runs not yet ended, rebuilt from their rows (what ``Client.resume`` takes up)."""
        return [self.restore(str(run_id)) for run_id in self.pending()["id"]]

    def __repr__(self) -> str:
        return f"<seqnb.Ledger {self.path}>"


def _epoch(value: Any) -> float:
    """Seconds since the epoch from a number, a datetime or a string (naive means UTC)."""
    if isinstance(value, int | float):
        return float(value)
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return float(stamp.timestamp())


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The ledger's dtypes: datetimes (UTC, ns), categories, nullable integers, strings, float money."""
    for col in ("created_at", "submitted_at", "started_at", "finished_at", "updated_at"):
        frame[col] = pd.to_datetime(pd.to_numeric(frame[col]), unit="s", utc=True).astype("datetime64[ns, UTC]")
    for col in ("server_created_at", "server_finished_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    for col in ("model", "status", "backend", "size", "currency"):
        frame[col] = frame[col].astype("category")
    for col in ("seed", "requested", "returned"):
        frame[col] = frame[col].astype("Int64")
    for col in (
        "id",
        "request_id",
        "base_url",
        "prompt",
        "options",
        "payload",
        "error",
        "sweep_id",
        "parent_id",
        "tags",
        "note",
    ):
        frame[col] = frame[col].astype("string")
    frame["est_cost"] = pd.to_numeric(frame["est_cost"]).astype("float64")
    frame["consistency"] = pd.to_numeric(frame["consistency"]).astype("float64")
    frame["queue_s"] = (frame["started_at"].fillna(frame["finished_at"]) - frame["submitted_at"]).dt.total_seconds()
    frame["run_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    return frame
