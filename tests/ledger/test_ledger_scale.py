"""The ledger's bounded reads on both stores: migration 8's indexes, pages with filters, spend as one GROUP BY.

Rows are written straight into the tables (as another tool or an old seqnb might have left them),
then read back through ``Ledger`` and compared with the full read filtered and totalled by pandas.
"""

from __future__ import annotations

import pandas as pd
import pytest

from seqnb.ledger.facade import Ledger
from seqnb.ledger.frames import SPEND_KEYS, spend
from seqnb.ledger.schema import MIGRATIONS, RUN_COLUMNS, SCHEMA_VERSION
from tests import postgres
from tests.postgres import Target

pg_cluster, target = postgres.pg_cluster, postgres.target  # fixtures: each test runs on SQLite, then PostgreSQL

MODELS = ("bytedance/seedream-4-5/sequential", "bytedance/seedream-4-0/sequential")
STATUSES = ("completed", "failed", "in_queue", "unknown", "cancelled", "completed")
ODD_COSTS = (None, "", "n/a", "0.1", "1e-3", "0.12", " 0.5 ", "-0.2")
INDEXES = {
    "runs_model_created",
    "runs_status_created",
    "runs_model_status_created",
    "runs_sweep_created",
    "runs_session_created",
    "runs_spend",
}


def fill(target: Target, n: int = 60) -> None:
    """``n`` runs over two days, two models, six statuses, three sweeps, two users' sessions and odd money values."""
    target.execute(
        "INSERT INTO sessions (id, username, host, pid, kernel, started_at, heartbeat_at) VALUES "
        "('se-a', 'alice', 'hub-1', 1, 'k1', 0, 0), ('se-b', 'bob', 'hub-2', 2, 'k2', 0, 0), "
        "('se-c', 'alice', 'hub-2', 3, 'k3', 0, 0)"
    )
    store = target.store()
    insert = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
    rows = []
    for i in range(n):
        t = 1_790_000_000.0 + i * 3000  # 60 runs span about two UTC days
        values = dict.fromkeys(RUN_COLUMNS)
        values |= {
            "id": f"r{i:03d}", "backend": "runcomfy" if i % 4 == 0 else "emulator", "base_url": "http://x",
            "model": MODELS[i % 2], "prompt": f"Generate 2 images of a {'heron' if i % 3 else 'wren'}",
            "requested": 1 + i % 4, "options": "{}", "payload": "{}", "status": STATUSES[i % len(STATUSES)],
            "created_at": t, "updated_at": t, "est_cost": ODD_COSTS[i % len(ODD_COSTS)],
            "currency": "EUR" if i % 11 == 0 else "USD", "sweep_id": f"sw-{i % 3}" if i % 5 else None,
            "note": "", "session": ("se-a", "se-b", "se-c", None)[i % 4],
            "cost": ("0.1", None, "nope", "0.3", "")[i % 5], "cost_differs": (0, 1, None, 1)[i % 4],
        }  # fmt: skip
        rows.append(tuple(values[c] for c in RUN_COLUMNS))
    with store.transaction():
        store.executemany(insert, rows)
    store.close()


def test_migration_8_keeps_a_version_7_ledger_and_adds_its_indexes(target: Target) -> None:
    store = target.store()
    assert store.migrate(MIGRATIONS, 7) == 0  # a ledger as seqnb left it before migration 8
    store.close()
    ledger = Ledger(target.url)
    fill(target)
    assert ledger.version == SCHEMA_VERSION >= 8
    if target.kind == "sqlite":
        names = {r[0] for r in target.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    else:
        names = {r[0] for r in target.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'runs'")}
    assert names >= INDEXES
    frame = ledger.runs()
    assert len(frame) == 60 and frame["id"].iloc[-1] == "r000" and ledger.count(by="alice") == 30
    ledger.close()


def test_pages_with_filters_are_the_full_read_filtered_then_sliced(target: Target) -> None:
    ledger = Ledger(target.url)
    fill(target)
    full = ledger.runs()
    cases = {
        "model": (dict(model="seedream-4.5"), full["model"] == "seedream-4.5"),
        "status": (dict(status=["completed", "failed"]), full["status"].isin(["completed", "failed"])),
        "sweep": (dict(sweep="sw-1"), full["sweep_id"] == "sw-1"),
        "by user": (dict(by="alice"), full["user"] == "alice"),
        "by user@host": (dict(by=["bob@hub-2", "se-c"]), full["session"].isin(["se-b", "se-c"])),
        "text": (dict(text="WREN"), full["prompt"].str.contains("wren")),
        "since": (dict(since=1_790_000_000 + 30 * 3000, model="seedream-4.0"), (full.index < 30) & (full["model"] == "seedream-4.0")),
        "none": ({}, full["id"].notna()),
    }  # fmt: skip
    for name, (filters, keep) in cases.items():
        wanted = full[keep.fillna(False)].reset_index(drop=True)
        assert ledger.count(**filters) == len(wanted), name
        for offset in (0, 7, len(wanted) - 3, len(wanted) + 5):
            page = ledger.runs(**filters, limit=7, offset=offset)
            expected = wanted.iloc[max(offset, 0) : offset + 7].reset_index(drop=True)
            pd.testing.assert_frame_equal(page, expected, check_categorical=False, obj=f"{name} at {offset}")
    ledger.close()


def test_spend_in_sql_totals_what_frames_spend_totals_over_odd_values(target: Target) -> None:
    """None, '', 'n/a', ' 0.5 ', '1e-3' as estimates, odd charges and flags: the GROUP BY reads them as pandas does."""
    ledger = Ledger(target.url)
    fill(target)
    full = ledger.runs()
    for by in [*SPEND_KEYS, ["model", "status"], ["user", "host", "backend"], ["day", "sweep"]]:
        for actual in (False, True):
            ours = ledger.spend(by, actual=actual)
            theirs = spend(full, by, actual)
            pd.testing.assert_frame_equal(ours, theirs, check_categorical=False, obj=f"spend({by!r}, {actual})")
    filtered = ledger.spend("status", model="seedream-4.0", who="alice", limit=9, offset=2)
    expected = spend(ledger.runs(model="seedream-4.0", by="alice", limit=9, offset=2), "status")
    pd.testing.assert_frame_equal(filtered, expected, check_categorical=False)
    with pytest.raises(ValueError, match=r"spend\(by=\.\.\.\) takes"):
        ledger.spend("colour")
    ledger.close()


def test_sqlite_serves_the_ledger_tab_by_index(target: Target) -> None:
    """On SQLite every filter of the Ledger tab pages and counts from an index: no scan of the runs table."""
    if target.kind != "sqlite":
        pytest.skip("PostgreSQL's plans depend on its statistics: see benchmarks/ledger.py")
    ledger = Ledger(target.url)
    fill(target)
    seen: list[str] = []
    store = ledger.store
    fetch = store.fetch

    def explained(sql: str, args: object = ()) -> tuple[list[tuple[object, ...]], list[str]]:
        if sql.startswith("SELECT") and " FROM runs" in sql and "marks" not in sql:
            rows, _ = fetch("EXPLAIN QUERY PLAN " + sql, args)  # type: ignore[arg-type]
            seen.extend(str(r[-1]) for r in rows)
        return fetch(sql, args)  # type: ignore[arg-type]

    store.fetch = explained  # type: ignore[method-assign]
    for filters in ({}, {"model": "seedream-4.5"}, {"status": "completed"}, {"sweep": "sw-1"}, {"by": "alice"}):
        ledger.count(**filters)
        ledger.runs(**filters, limit=50, offset=10)
    assert seen and not [s for s in seen if s.startswith("SCAN runs") and "INDEX" not in s], seen
    seen.clear()
    ledger.spend("model")  # grouped in the order of an index that holds every value it reads: no sort
    assert seen == ["SCAN runs USING COVERING INDEX runs_spend"], seen
    ledger.close()
