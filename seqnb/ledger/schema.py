"""The ledger's tables, and the SQL that writes and reads its runs: migrations, the row upsert, the runs query.

Written once for both stores (``seqnb.ledger.stores.base``): ``?`` placeholders and SQLite's types, which
PostgreSQL reads as their 8-byte kinds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import LedgerError
from .duels import DUELS_MIGRATION
from .marks import adopt_tags, judged_ids, reader
from .stores.base import Store

__all__ = [
    "MARKS_VERSION",
    "MIGRATIONS",
    "RUN_COLUMNS",
    "RUN_FIELDS",
    "SCHEMA_VERSION",
    "SELECT_RUNS",
    "UPSERT_RUN",
    "migrate",
    "run_values",
    "runs_filter",
]

# Each entry moves the schema one version up; never edit a released one, append. Written for
# SQLite; PostgreSQL reads REAL and INTEGER as their 8-byte kinds (``Store.ddl``).
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
    # 4: who made a run and who watches it (a session: one client attached to this ledger, in one
    # process on one host), and a budget shared by everyone writing to the ledger
    """
    ALTER TABLE runs ADD COLUMN session TEXT;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN default_seed INTEGER;
    CREATE INDEX runs_session ON runs(session);
    CREATE INDEX runs_owner ON runs(owner);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        username TEXT,
        host TEXT,
        pid INTEGER,
        kernel TEXT,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        ended_at REAL
    );
    CREATE TABLE budgets (
        currency TEXT PRIMARY KEY,
        amount TEXT NOT NULL,
        set_at REAL NOT NULL,
        set_by TEXT
    );
    """,
    # 5: what the service charged (``include_cost``), beside seqnb's estimate, and where each came from
    """
    ALTER TABLE runs ADD COLUMN cost TEXT;
    ALTER TABLE runs ADD COLUMN cost_source TEXT;
    ALTER TABLE runs ADD COLUMN est_source TEXT;
    ALTER TABLE runs ADD COLUMN cost_differs INTEGER;
    """,
    # 6: the reference images of an edit-sequential run, a JSON list ("references" is reserved in SQL)
    """
    ALTER TABLE runs ADD COLUMN reference_urls TEXT;
    """,
    # 7: marks, a person's judgement of a run (``seqnb.ledger.marks``): one row per mark, never updated; and
    # the runs' parent links indexed, for ``Ledger.lineage``
    """
    CREATE TABLE marks (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        frame INTEGER,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        "by" TEXT NOT NULL,
        "at" REAL NOT NULL
    );
    CREATE INDEX marks_run ON marks(run_id, kind);
    CREATE INDEX marks_by ON marks("by", run_id);
    CREATE INDEX runs_parent ON runs(parent_id);
    """,
    # 8: a page of runs picked from an index alone (``Ledger.runs(limit=...)``: the ids in time order), and the
    # filtered counts by index: each filter of the Ledger tab, then the time it sorts by and the id it picks
    # (the older one-column indexes stay: a released schema's objects are never dropped); and spend() by model
    # grouped in the order of an index that holds every value it reads (10x faster at 1M runs on SQLite)
    """
    CREATE INDEX runs_created_id ON runs(created_at, id);
    CREATE INDEX runs_model_created ON runs(model, created_at, id);
    CREATE INDEX runs_status_created ON runs(status, created_at, id);
    CREATE INDEX runs_model_status_created ON runs(model, status, created_at, id);
    CREATE INDEX runs_sweep_created ON runs(sweep_id, created_at, id);
    CREATE INDEX runs_session_created ON runs(session, created_at, id);
    CREATE INDEX runs_spend ON runs(model, status, backend, currency, est_cost, cost, cost_differs, requested);
    """,
    # 9: a run's label, what tells it apart from the runs around it (``seqnb.model.labels``), computed once when made
    """
    ALTER TABLE runs ADD COLUMN label TEXT;
    """,
    # 10: liveness that compares no two clocks and trusts no host name (``seqnb.ledger.sessions``): the machine a
    # session's pid means something on, the heartbeat counter the session renews, and how often it promised to
    """
    ALTER TABLE sessions ADD COLUMN machine TEXT;
    ALTER TABLE sessions ADD COLUMN beats INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN beat_seconds REAL;
    """,
    # 11 (duels): a person's choice between two series, one row each (``seqnb.ledger.duels``)
    DUELS_MIGRATION,
]

SCHEMA_VERSION = len(MIGRATIONS)
MARKS_VERSION = 7
"""The schema that brought marks: migrating past it turns the runs' old ``tags`` column into tag marks."""

RUN_COLUMNS = (
    "id", "request_id", "backend", "base_url", "model", "prompt", "seed", "size", "requested", "returned",
    "options", "payload", "status", "error", "created_at", "submitted_at", "started_at", "finished_at",
    "server_created_at", "server_finished_at", "est_cost", "currency", "sweep_id", "updated_at", "parent_id", "note",
    "session", "owner", "default_seed", "cost", "cost_source", "est_source", "cost_differs", "reference_urls", "label",
)  # fmt: skip
RUN_FIELDS = (
    "request_id", "error", "created_at", "submitted_at", "started_at", "finished_at", "server_created_at",
    "server_finished_at", "sweep_id", "parent_id", "cost_source",
)  # fmt: skip
"""The columns that hold a run's field of the same name as it is, written and read back alike."""
# A run's maker (session) never changes; its watcher (owner) changes only by a claim, and a session
# that lost its run to a claim can no longer write it (the WHERE): the lease is the row itself.
UPSERT_RUN = (
    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "
    f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in RUN_COLUMNS if c not in ('id', 'session', 'owner'))}, "
    "owner=COALESCE(runs.owner, excluded.owner) "
    "WHERE runs.owner IS NULL OR runs.owner = excluded.owner"
)


def run_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A run row by column name as ``UPSERT_RUN``'s arguments, in ``RUN_COLUMNS`` order; refuses a missing or extra column."""
    missing = [c for c in RUN_COLUMNS if c not in row]
    extra = sorted(set(row) - set(RUN_COLUMNS))
    if missing or extra:
        raise ValueError(f"a run row must have exactly RUN_COLUMNS: missing {missing}, extra {extra}")
    return tuple(row[c] for c in RUN_COLUMNS)


# The run's own columns (its old ``tags`` column, from before marks, stays unread: its tags became marks in
# migration 7) and who made it; its marks as they stand are read apart (``marks.current_marks``).
SELECT_RUNS = (
    f"SELECT {', '.join('runs.' + c for c in RUN_COLUMNS)}, runs.consistency, "
    's.username AS "user", s.host AS host, s.kernel AS kernel '
    "FROM runs LEFT JOIN sessions s ON s.id = runs.session"
)


def migrate(store: Store, target: int = SCHEMA_VERSION) -> None:
    """Bring the store's schema up to ``target``; refuse a schema newer than this seqnb knows."""
    version = store.version()
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {store.location} has schema {version}, newer than this seqnb's {SCHEMA_VERSION}: "
            "upgrade seqnb (pip install -U seqnb), or open another ledger"
        )
    if version < target:
        with store.transaction(lock=True):  # the tags of old runs become marks in the same transaction
            found = store.migrate(MIGRATIONS, target)
            if found < MARKS_VERSION <= target:
                adopt_tags(store)


def runs_filter(
    like: str,
    page: str = "",
    *,
    model: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    sweep: str | None = None,
    text: str | None = None,
    since: Any = None,
    until: Any = None,
    ids: Sequence[str] | None = None,
    by: str | Sequence[str] | None = None,
    rating_at_least: int | None = None,
    verdict: str | None = None,
    tag: str | None = None,
    marks_by: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading space, or empty) and its arguments, for the ``runs`` filters.

    ``like`` is the store's case-insensitive LIKE (``Store.like``); ``page``, a LIMIT / OFFSET clause (``Store.page``),
    keeps a page of the matching runs, newest first: their ids picked by index, then only their rows read. The mark filters (``rating_at_least``,
    ``verdict``, ``tag``) read the marks of ``marks_by`` (``seqnb.ledger.marks.reader``: default the current user).
    """
    from ..model.spec import get_model
    from .frames import epoch

    where: list[str] = []
    args: list[Any] = []

    def among(column: str, values: str | Sequence[str]) -> None:
        items = [values] if isinstance(values, str) else list(values)
        where.append(f"{column} IN ({', '.join('?' * len(items))})" if items else "1 = 0")
        args.extend(items)

    if model is not None:
        among("runs.model", [get_model(m).id for m in ([model] if isinstance(model, str) else model)])
    if status is not None:
        among("runs.status", status)
    if sweep is not None:
        where.append("runs.sweep_id = ?")
        args.append(sweep)
    if ids is not None:
        among("runs.id", ids)
    if by is not None:
        who: list[str] = []
        for item in [by] if isinstance(by, str) else list(by):
            if item.startswith("se-"):
                who.append("id = ?")
                args.append(item)
            elif "@" in item:
                who.append("(username = ? AND host = ?)")
                args.extend(item.rsplit("@", 1))
            else:
                who.append("username = ?")
                args.append(item)
        # the sessions are few: their ids first, then the runs by index, with no join to count
        where.append(f"runs.session IN (SELECT id FROM sessions WHERE {' OR '.join(who)})" if who else "1 = 0")
    if text:
        where.append(f"runs.prompt {like} ? ESCAPE '\\'")
        args.append("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if since is not None:
        where.append("runs.created_at >= ?")
        args.append(epoch(since))
    if until is not None:
        where.append("runs.created_at < ?")
        args.append(epoch(until))
    if rating_at_least is not None or verdict is not None or tag is not None:
        judged, judged_args = judged_ids(reader(marks_by), rating_at_least=rating_at_least, verdict=verdict, tag=tag)
        where += judged
        args += judged_args
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if page:
        clause = f" WHERE runs.id IN (SELECT runs.id FROM runs{clause} ORDER BY runs.created_at DESC{page})"
    return clause, args
