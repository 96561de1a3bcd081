"""A report of 100 runs x 4 frames: its time and size, against the same report with the full-size images inside.

    python benchmarks/report.py [--runs 100] [--frames 4]

The runs are drawn by the embedded emulator and downloaded into a fresh image cache first (not
timed); then ``ledger.report`` is timed with the default thumbnails, and again with
``full="embed"`` as the baseline a naive page would be. Targets: under 10 s and under 15 MB with
the default thumbnails.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import seqnb
from seqnb.testing import emulator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator(queue_wait=0, base_seconds=0.01, seconds_per_image=0.01, workers=16) as emu,
    ):
        client = seqnb.connect(
            emu.token, emu.base_url, ledger=Path(tmp) / "l.sqlite", download=seqnb.ImageCache(Path(tmp) / "c")
        )
        start = time.perf_counter()
        runs = client.sweep(
            prompts=[f"Generate {args.frames} images of a lighthouse keeper's day"], seeds=range(args.runs),
            budget="1000", quiet=True,
        )  # fmt: skip
        client.wait_all(runs, timeout=600)
        client.settle()
        print(f"{args.runs} runs x {args.frames} frames drawn and cached in {time.perf_counter() - start:.1f} s")
        assert client.ledger is not None
        frames = args.runs * args.frames
        results = {}
        for full in ("none", "embed"):
            start = time.perf_counter()
            path = client.report(client.ledger.runs(), Path(tmp) / f"report-{full}.html", full=full)
            seconds, size = time.perf_counter() - start, path.stat().st_size
            results[full] = (seconds, size)
            label = "thumbnails (default)" if full == "none" else "full size inside (baseline)"
            print(f"{label:28} {seconds:6.2f} s  {size / 2**20:7.2f} MiB  {size / frames / 1024:6.1f} KiB per frame")
        (t, s), (bt, bs) = results["none"], results["embed"]
        print(f"ratio to the baseline: time {t / bt:.2f}x, size {s / bs:.3f}x")
        print(f"targets: under 10 s ({'met' if t < 10 else 'MISSED'}), under 15 MB ({'met' if s < 15e6 else 'MISSED'})")
        client.close()


if __name__ == "__main__":
    main()
