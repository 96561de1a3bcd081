"""The ledger on both stores: the Ledger tab, count() and spend() at any size; runs() of 100,000 rows; one update; many writers.

    python benchmarks/ledger.py [--runs 100000] [--writers 4] [--per-writer 250] [--url postgresql://...]

SQLite is a temp file; PostgreSQL is ``--url``, else a throwaway cluster started here (Debian's
``postgresql`` package: the same one the tests use). Baselines measured in the same run: the
rows fetched by the bare driver into an untyped DataFrame (for ``runs()``), and a bare
``UPDATE runs SET status=?`` (for one update), spend over every column of ``runs()`` (for ``spend()``). Many writers: ``--writers`` processes each record
``--per-writer`` runs at once, every run through five states (created, submitting, in_queue,
in_progress, completed: five writes, as a client makes them); then no run may be lost or
written twice, and the latency of each write is reported. Goals: runs() under 1 s; an update
under 1 ms on SQLite (a round trip to a server costs more: reported, not a goal). At ``--runs 1000000``: a Ledger-tab
page and count() <= 0.2 s, spend() <= 2 s (the full runs() and marks sections run only up to 200,000 runs).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.postgres: the throwaway cluster

from seqnb import Request
from seqnb.api.backend import Backend
from seqnb.ledger.facade import Ledger
from seqnb.ledger.schema import RUN_COLUMNS, SELECT_RUNS
from seqnb.ledger.stores import SqliteStore
from seqnb.runs.run import RunCore

BACKEND = Backend("emulator", "http://127.0.0.1:1", "benchmark")
STATES = ("submitting", "in_queue", "in_progress", "completed")


def fill(ledger: Ledger, n: int) -> None:
    """``n`` runs (a twentieth failed, 100 a sweep), written in chunks of 20,000; PostgreSQL vacuumed and analyzed after, as autovacuum would."""
    payload = json.dumps(Request("seedream-4.5", "Generate 3 images of a lighthouse", count=3, seed=1).payload())
    now = time.time() - n
    insert = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
    for start in range(0, n, 20_000):
        rows = []
        for i in range(start, min(n, start + 20_000)):
            t = now + i
            values = {
                "id": f"run{i:08d}", "request_id": f"req{i:08d}", "backend": "emulator", "base_url": "http://127.0.0.1:1",
                "model": "bytedance/seedream-4-5/sequential" if i % 2 else "bytedance/seedream-4-0/sequential",
                "prompt": f"Generate 3 images of a lighthouse, variant {i % 500}", "seed": i, "size": "2K", "requested": 3,
                "returned": 3, "options": "{}", "payload": payload, "status": "failed" if i % 20 == 7 else "completed",
                "error": None, "created_at": t,
                "submitted_at": t + 0.1, "started_at": t + 0.5, "finished_at": t + 4, "server_created_at": None,
                "server_finished_at": None, "est_cost": "0.12", "currency": "USD", "sweep_id": f"sw-{i // 100}",
                "updated_at": t + 4, "parent_id": None, "note": "", "session": None, "owner": None, "default_seed": None,
            }  # fmt: skip
            rows.append(tuple(values.get(c) for c in RUN_COLUMNS))
        with ledger.store.transaction():
            ledger.store.executemany(insert, rows)
    if not isinstance(ledger.store, SqliteStore):
        ledger.store.execute("VACUUM ANALYZE runs")


def count_and_page(ledger: Ledger, filters: dict[str, Any], offset: int) -> tuple[int, pd.DataFrame]:
    """What the Ledger tab asks for a page: the count, then the page."""
    return ledger.count(**filters), ledger.runs(**filters, limit=50, offset=offset)


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_runs(ledger: Ledger, n: int) -> None:
    ours = best(lambda: ledger.runs())

    def raw() -> pd.DataFrame:
        cursor = ledger.store.execute("SELECT * FROM runs")
        return pd.DataFrame.from_records(cursor.fetchall(), columns=[d[0] for d in cursor.description])

    baseline = best(raw)
    assert len(ledger.runs()) == n
    print(
        f"  runs() of {n:,} runs into a typed DataFrame: {ours:.3f} s   untyped fetch baseline {baseline:.3f} s   "
        f"ratio {ours / baseline:.2f}   goal < 1 s: {'met' if ours < 1 else 'NOT met'}"
    )


def bench_marks(ledger: Ledger, n: int) -> None:
    """runs() once a tenth of the runs carry marks (rating, verdict, two tags each), against runs() without any."""
    bare = best(lambda: ledger.runs())
    marked = [f"run{i:08d}" for i in range(0, n, 10)]
    rows = [
        (run_id, kind, value, "bench", time.time())
        for k, run_id in enumerate(marked)
        for kind, value in (("rating", str(1 + k % 5)), ("verdict", "picked" if k % 3 else "rejected"),
                            ("tag", "hero"), ("tag", f"t{k % 7}"))
    ]  # fmt: skip
    for start in range(0, len(rows), 10_000):
        with ledger.store.transaction():
            ledger.store.executemany(
                'INSERT INTO marks (run_id, kind, value, "by", "at") VALUES (?, ?, ?, ?, ?)',
                rows[start : start + 10_000],
            )
    ours = best(lambda: ledger.runs(marks_by="bench"))
    picked = best(lambda: ledger.runs(marks_by="bench", verdict="picked", rating_at_least=4))
    assert ledger.runs(marks_by="bench")["rating"].notna().sum() == len(marked)
    print(
        f"  runs() of {n:,} runs, {len(marked):,} of them marked ({len(rows):,} marks): {ours:.3f} s   "
        f"with no marks {bare:.3f} s   ratio {ours / bare:.2f}   filtered (picked, 4+ stars) {picked:.3f} s"
    )


OLD_SPEND = (  # the slim query spend() read before it was one GROUP BY: every matching row, its columns typed
    "SELECT runs.id, runs.model, runs.created_at, runs.sweep_id, runs.status, runs.currency, runs.backend, "
    'runs.est_cost, runs.cost, runs.cost_differs, runs.requested, s.username AS "user", s.host AS host '
    "FROM runs LEFT JOIN sessions s ON s.id = runs.session"
)


def old_page(ledger: Ledger, filters: dict[str, Any], limit: int, offset: int) -> int:
    """The Ledger tab's queries as they were: a join to count, the full row read to the page's offset."""
    from seqnb.ledger.frames import frame_of
    from seqnb.ledger.schema import runs_filter

    where, args = runs_filter(ledger.store.like, **filters)
    join = " LEFT JOIN sessions s ON s.id = runs.session"
    rows, _ = ledger._query("SELECT COUNT(*) FROM runs" + join + where, args)
    page = ledger.store.page(limit, offset)
    frame_of(*ledger._query(SELECT_RUNS + where + " ORDER BY runs.created_at DESC" + page, args))
    return int(rows[0][0])


def bench_tab(ledger: Ledger, n: int) -> None:
    """The Studio's Ledger tab: a full refresh (sweeps, count, first page), a page turn, and each filter it offers."""
    from seqnb.ui.ledger_view import LedgerView

    view = LedgerView(ledger, page_size=50)
    first = best(lambda: view.refresh())
    deep = n // 50 // 2  # a page in the middle: OFFSET half the runs

    def turn_deep() -> None:
        view.page = deep
        view.turn(1)

    turn = best(turn_deep)
    assert len(view.frame) == 50
    print(f"  Ledger tab of {n:,} runs: refresh (sweep list, count, first page) {first:.3f} s   "
          f"turn to page {deep + 2:,} {turn:.3f} s   goal <= 0.2 s: {'met' if max(first, turn) <= 0.2 else 'NOT met'}")  # fmt: skip
    cases: dict[str, dict[str, Any]] = {
        "none": {}, "model": {"model": "seedream-4.5"}, "status": {"status": "failed"}, "sweep": {"sweep": f"sw-{n // 200}"},
        "model+status": {"model": "seedream-4.0", "status": "completed"}, "text": {"text": "variant 42"},
    }  # fmt: skip
    for name, filters in cases.items():
        count = best(partial(ledger.count, **filters))
        page0 = best(partial(count_and_page, ledger, filters, 0))
        offset = max(0, min(ledger.count(**filters) // 2, 100_000) // 50 * 50)
        paged = best(partial(count_and_page, ledger, filters, offset))
        old = best(partial(old_page, ledger, filters, 50, offset), repeat=1)
        print(
            f"    filter {name:<12} count() {count:.3f} s   count + page 1 {page0:.3f} s   count + page at offset "
            f"{offset:,} {paged:.3f} s   old queries at that offset {old:.3f} s   ratio {paged / old:.2f}"
            + ("   (a LIKE: every row read)" if name == "text" else "")
        )


def bench_spend(ledger: Ledger, n: int) -> None:
    """spend() is one GROUP BY; the baseline is the old slim query typed and totalled in pandas (once)."""
    from seqnb.ledger.frames import spend, spend_frame

    ours = best(lambda: ledger.spend("model"))
    day = best(lambda: ledger.spend(["day", "sweep"]))
    filtered = best(lambda: ledger.spend("model", status="failed"))
    baseline = best(lambda: spend(spend_frame(*ledger._query(OLD_SPEND)), "model"), repeat=1)
    print(
        f"  spend() of {n:,} runs: by model {ours:.3f} s   by day and sweep {day:.3f} s   failed only {filtered:.3f} s   "
        f"old slim query + pandas {baseline:.3f} s   ratio {ours / baseline:.2f}   goal <= 2 s: {'met' if ours <= 2 else 'NOT met'}"
    )


def bench_update(ledger: Ledger, n: int) -> None:
    runs = [RunCore(Request("seedream-4.5", "Generate 3 images of a heron", count=3, seed=i)) for i in range(500)]
    for run in runs:
        ledger.record(run, BACKEND)
    ours, bare = [], []
    for status in STATES[:3]:
        for run in runs:
            run.status = status  # type: ignore[assignment]
            start = time.perf_counter()
            ledger.record(run, BACKEND)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            ledger.store.execute("UPDATE runs SET status=?, updated_at=? WHERE id=?", (status, time.time(), run.id))
            bare.append(time.perf_counter() - start)
    ours_ms, bare_ms = statistics.median(ours) * 1000, statistics.median(bare) * 1000
    print(
        f"  one state update (full row upsert, {n:,} runs in the ledger): median {ours_ms:.3f} ms, "
        f"p99 {sorted(ours)[int(len(ours) * 0.99)] * 1000:.3f} ms   bare UPDATE baseline {bare_ms:.3f} ms   "
        f"ratio {ours_ms / bare_ms:.2f}"
    )


def writer(target: str, count: int, go: Any, out: Any) -> None:
    """One kernel: a session of its own, ``count`` runs each through five writes; sends back its ids and latencies."""
    ledger = Ledger(target)
    session = ledger.open_session()
    runs = [RunCore(Request("seedream-4.5", "Generate 2 images of a kite", count=2, seed=i)) for i in range(count)]
    go.wait()
    latencies = []
    for run in runs:
        for status in ("created", *STATES):
            run.status = status  # type: ignore[assignment]
            start = time.perf_counter()
            ledger.record(run, BACKEND, session.id)
            latencies.append(time.perf_counter() - start)
    ledger.end_session(session.id)
    out.put(([r.id for r in runs], latencies))


def bench_writers(target: str, writers: int, per_writer: int) -> None:
    ledger = Ledger(target)
    before = ledger.count()
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(target, per_writer, go, out)) for _ in range(writers)]
    for proc in procs:
        proc.start()
    time.sleep(2.0)  # let every process open its ledger, then start them together
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - start
    for proc in procs:
        proc.join()
    ids = [run_id for run_ids, _ in results for run_id in run_ids]
    latencies = sorted(x for _, lat in results for x in lat)
    frame = ledger.runs(ids=ids)
    lost = len(set(ids)) - len(frame)
    twice = len(frame) - frame["id"].nunique()
    done = int((frame["status"] == "completed").sum())
    sessions = frame["session"].nunique()
    assert ledger.count() - before == writers * per_writer
    print(
        f"  {writers} processes x {per_writer} runs at once ({len(latencies):,} writes in {wall:.2f} s, "
        f"{len(latencies) / wall:,.0f} writes/s): {len(frame)} runs, lost {lost}, written twice {twice}, "
        f"completed {done}, sessions {sessions}; per write median {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    assert lost == 0 and twice == 0 and done == writers * per_writer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--per-writer", type=int, default=250)
    parser.add_argument("--url", default=None, help="a PostgreSQL database to use (default: a throwaway cluster)")
    args = parser.parse_args()
    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            targets = {"SQLite": str(Path(tmp) / "bench.sqlite"), "PostgreSQL": args.url}
            if args.url is None:
                from tests.postgres import Cluster, bindir

                found = bindir()
                if found is None:
                    print("(no PostgreSQL binaries: apt-get install postgresql; benchmarking SQLite only)")
                    del targets["PostgreSQL"]
                else:
                    cluster = Cluster(found).start()
                    targets["PostgreSQL"] = cluster.create_database()
            for name, target in targets.items():
                print(f"{name}:")
                ledger = Ledger(target)
                start = time.perf_counter()
                fill(ledger, args.runs)
                print(f"  filled {args.runs:,} runs in {time.perf_counter() - start:.1f} s")
                bench_tab(ledger, args.runs)
                bench_spend(ledger, args.runs)
                if args.runs <= 200_000:  # a full runs() of a million rows takes gigabytes: skipped there
                    bench_runs(ledger, args.runs)
                    bench_marks(ledger, args.runs)
                bench_update(ledger, args.runs)
                bench_writers(target, args.writers, args.per_writer)
                ledger.close()
        finally:
            if cluster is not None:
                cluster.stop()


if __name__ == "__main__":
    main()
