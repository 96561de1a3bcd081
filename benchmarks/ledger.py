"""The ledger at 100,000 runs: reading all into a typed DataFrame, and the cost of one state update.

    python benchmarks/ledger.py [--runs 100000]

Baselines in the same run: ``pandas.read_sql_query("SELECT * FROM runs")`` (untyped) for the read,
and a bare ``UPDATE runs SET status=?`` for the write. Goals: runs() under 1 s; an update under 1 ms.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from seqnb import Request
from seqnb.client import Backend
from seqnb.ledger import _RUN_COLUMNS, Ledger
from seqnb.runs import RunCore


def fill(path: Path, n: int) -> None:
    Ledger(path)  # creates the schema
    now = time.time() - n
    payload = json.dumps(Request("seedream-4.5", "Generate 3 images of a lighthouse", count=3, seed=1).payload())
    rows = []
    for i in range(n):
        t = now + i
        values = {
            "id": f"run{i:08d}", "request_id": f"req{i:08d}", "backend": "emulator", "base_url": "http://127.0.0.1:1",
            "model": "bytedance/seedream-4-5/sequential" if i % 2 else "bytedance/seedream-4-0/sequential",
            "prompt": f"Generate 3 images of a lighthouse, variant {i % 500}", "seed": i, "size": "2K", "requested": 3,
            "returned": 3, "options": "{}", "payload": payload, "status": "completed", "error": None, "created_at": t,
            "submitted_at": t + 0.1, "started_at": t + 0.5, "finished_at": t + 4, "server_created_at": None,
            "server_finished_at": None, "est_cost": "0.12", "currency": "USD", "sweep_id": f"sw-{i // 100}",
            "updated_at": t + 4, "parent_id": None, "note": "",
        }  # fmt: skip
        rows.append(tuple(values[c] for c in _RUN_COLUMNS))
    conn = sqlite3.connect(path)
    conn.executemany(
        f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", rows
    )
    conn.commit()
    conn.close()


def best(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        fill(path, args.runs)
        ledger = Ledger(path)
        ours = best(lambda: ledger.runs())
        raw_conn = sqlite3.connect(path)
        raw = best(lambda: pd.read_sql_query("SELECT * FROM runs", raw_conn))
        frame = ledger.runs()
        assert len(frame) == args.runs
        print(
            f"runs() of {args.runs:,} runs into a typed DataFrame: {ours:.3f} s   untyped read_sql baseline {raw:.3f} s   ratio {ours / raw:.2f}   goal < 1 s: {'met' if ours < 1 else 'NOT met'}"
        )

        backend = Backend("emulator", "http://127.0.0.1:1", "test")
        runs = [RunCore(Request("seedream-4.5", "Generate 3 images of a heron", count=3, seed=i)) for i in range(1000)]
        for run in runs:
            ledger.record(run, backend)
        statuses = ["submitting", "in_queue", "in_progress"]
        per_update = []
        for status in statuses:
            for run in runs:
                run.status = status  # type: ignore[assignment]
                start = time.perf_counter()
                ledger.record(run, backend)
                per_update.append(time.perf_counter() - start)
        raw_times = []
        for status in statuses:
            for run in runs:
                start = time.perf_counter()
                raw_conn.execute("UPDATE runs SET status=?, updated_at=? WHERE id=?", (status, time.time(), run.id))
                raw_conn.commit()
                raw_times.append(time.perf_counter() - start)
        ours_ms = statistics.median(per_update) * 1000
        raw_ms = statistics.median(raw_times) * 1000
        print(
            f"one state update (full row upsert, in a file of {args.runs:,} runs): median {ours_ms:.3f} ms, p99 {sorted(per_update)[int(len(per_update) * 0.99)] * 1000:.3f} ms   bare UPDATE baseline {raw_ms:.3f} ms   ratio {ours_ms / raw_ms:.2f}   goal < 1 ms: {'met' if ours_ms < 1 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
