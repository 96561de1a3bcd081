"""The Studio's cost at sweep scale: sweeps of one-image runs on the embedded emulator, with and without the Studio.

    python benchmarks/ui.py [--runs 100 1000]

Each configuration runs in a fresh process (so "with" and "without" share nothing). There the
process's main thread plays the kernel: an asyncio loop that owns the client, the ledger, the
gallery's downloads and the widgets, while the emulator serves from its own threads. Widgets send
through a recording comm (``comm.create_comm`` is the hook meant for that), which counts what a
kernel would send to the browser. Per configuration:
- kernel time: CPU seconds of the loop's thread from the sweep's start until every run has ended,
  every image is in and (with the Studio) the board's last snapshot says so;
- comm messages sent meanwhile (opens, updates, closes), per run;
- live widgets at the end;
- the loop's lag: how late a 10 ms timer fires (what another cell's small computation waits);
- with the Studio, how long after the kernel saw the last run end the board said so.
Goals: kernel time with / without <= 1.2 at 1,000 runs; <= 3 comm messages per run; live widgets
independent of the number of runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

SENT: Counter[str] = Counter()


def install_recording_comm() -> None:
    """Count every message widgets would send to a front end."""
    import comm
    from comm import DummyComm

    class RecordingComm(DummyComm):
        def publish_msg(
            self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
        ) -> None:
            SENT[msg_type] += 1  # and serialise it, as a kernel would, so that its cost is counted
            SENT["bytes"] += len(json.dumps(data)) + sum(len(memoryview(b).cast("B")) for b in buffers or ())

    comm.create_comm = RecordingComm


def live_widgets() -> int:
    from ipywidgets.widgets import widget

    return len(widget._instances)


async def lag_probe(samples: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(period)
        samples.append(time.perf_counter() - start - period)


async def measure(runs: int, studio: bool, workers: int) -> dict[str, Any]:
    import seqnb
    from seqnb.images.cache import ImageCache
    from seqnb.testing import emulator

    tmp = Path(tempfile.mkdtemp(prefix="seqnb-ui-bench-"))
    with emulator(queue_wait=0.0, base_seconds=0.05, seconds_per_image=0.05, workers=workers) as emu:
        client = seqnb.connect(
            emu.token, emu.base_url, ledger=tmp / "ledger.sqlite", download=ImageCache(tmp / "cache")
        )
        shown = None
        if studio:
            shown = seqnb.Studio(client)
            shown.show_tab("Runs")  # what the request panel shows once a sweep is sent
        widgets_before = live_widgets()
        lags: list[float] = []
        stop = asyncio.Event()
        SENT.clear()
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        sweep = client.sweep(prompts=["Generate 1 image of a lighthouse at dusk"], seeds=range(runs), quiet=True)
        submit_cell = time.perf_counter() - wall0  # the cell that sends the sweep (validates and records every run)
        probe = asyncio.get_running_loop().create_task(lag_probe(lags, stop))  # another cell, while the runs go on
        await client.aio.wait_all([r.aio for r in sweep])
        kernel_done = time.perf_counter()
        assert client.gallery is not None
        await client.gallery.settle()
        board_lag = None
        if shown is not None:
            while shown.board.snapshot.get("counts", {}).get("completed") != runs:
                await asyncio.sleep(0.01)
            board_lag = time.perf_counter() - kernel_done
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        stop.set()
        await probe
        sent = dict(SENT)
        sent_bytes = sent.pop("bytes", 0)
        completed = sum(r.status == "completed" for r in sweep)
        result = {
            "runs": runs,
            "studio": studio,
            "completed": completed,
            "kernel_cpu": cpu,
            "wall": wall,
            "messages": sum(sent.values()),
            "by_type": sent,
            "bytes": sent_bytes,
            "widgets_before": widgets_before,
            "widgets_after": live_widgets(),
            "lag_max": max(lags),
            "lag_p99": statistics.quantiles(lags, n=100, method="inclusive")[98] if len(lags) > 2 else max(lags),
            "submit_cell": submit_cell,
            "board_lag": board_lag,
        }
        if shown is not None:
            shown.close()
        await client.aio.aclose()
    return result


def child(runs: int, studio: bool, workers: int) -> None:
    install_recording_comm()
    print(json.dumps(asyncio.run(measure(runs, studio, workers))))


def run_child(runs: int, studio: bool, workers: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", "--runs", str(runs), "--workers", str(workers)]
    out = subprocess.run([*argv, *(["--studio"] if studio else [])], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, default=32, help="emulator workers")
    parser.add_argument("--studio", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs[0], args.studio, args.workers)
        return
    print(f"{'runs':>5} {'studio':>7} {'kernel s':>9} {'wall s':>7} {'msgs':>6} {'msgs/run':>8} "
          f"{'MB sent':>8} {'widgets':>8} {'lag p99':>8} {'lag max':>8} {'board lag':>9}")  # fmt: skip
    for runs in args.runs:
        results = {}
        for studio in (False, True):
            r = results[studio] = run_child(runs, studio, args.workers)
            assert r["completed"] == runs, r
            board = f"{r['board_lag']:.2f} s" if r["board_lag"] is not None else "-"
            print(
                f"{runs:>5} {'with' if studio else 'without':>7} {r['kernel_cpu']:>9.2f} {r['wall']:>7.2f} "
                f"{r['messages']:>6} {r['messages'] / runs:>8.2f} {r['bytes'] / 1e6:>8.2f} {r['widgets_after']:>8} "
                f"{r['lag_p99'] * 1000:>6.1f}ms {r['lag_max'] * 1000:>6.1f}ms {board:>9}",
                flush=True,
            )
        ratio = results[True]["kernel_cpu"] / results[False]["kernel_cpu"]
        wall = results[True]["wall"] / results[False]["wall"]
        per_run = results[True]["messages"] / runs
        print(
            f"{runs:>5} runs: kernel time with / without the Studio {ratio:.2f} (goal <= 1.2), wall {wall:.2f}; "
            f"comm messages per run {per_run:.2f} (goal <= 3); messages by type {results[True]['by_type']}"
        )


if __name__ == "__main__":
    main()
