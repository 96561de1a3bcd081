"""A 12 x 12 matrix of 4-frame series from the cache: seqnb.matrix against a plain ipywidgets grid, in one run.

    python benchmarks/matrix.py

A sweep of 12 prompts x 12 seeds (144 runs, 576 frames) on the emulator, downloaded into an image
cache with its thumbnails made once. Then, each from a fresh gallery over that cache (the way a
new session opens it): the time to open ``seqnb.matrix`` (its first page, and all 12 x 12 on one
page), the bytes it sends for a page and its live widgets, against the same frames as a plain
ipywidgets grid (one ``w.Image`` per frame, the cache's thumbnails, in an ``HBox`` per run).
Goals: the matrix opens at least 5x faster than the grid, and a page's bytes stay bounded
(under 1 MB for the first page, whatever the size of the sweep).
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

import seqnb
from seqnb import Gallery, ImageCache
from seqnb.testing import emulator
from seqnb.ui.matrix_view import MatrixView

THUMB = 96


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def live() -> int:
    from ipywidgets.widgets import widget

    return len(widget._instances)


def plain_grid(gallery: Gallery, runs: list[Any]) -> tuple[w.VBox, int]:
    """The same frames the plain way: a label and an HBox of ``w.Image`` per run; returns it and its image bytes."""
    rows, sent = [], 0
    for run in runs:
        images = []
        for frame in gallery.frames(run):
            assert frame.image is not None
            data = gallery.cache.thumbnail(frame.image, THUMB).read_bytes()
            sent += len(data)
            images.append(w.Image(value=data, format="jpeg", width=THUMB))
        rows.append(w.VBox([w.HTML(f"<b>{run.request.prompt[-20:]} · seed {run.request.seed}</b>"), w.HBox(images)]))
    return w.VBox(rows), sent


def main() -> None:
    with (
        emulator(queue_wait=0, base_seconds=0.02, seconds_per_image=0.01, workers=16) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        cache_dir = Path(tmp) / "cache"
        client = seqnb.connect(
            emu.token, emu.base_url, ledger=Path(tmp) / "ledger.sqlite", download=ImageCache(cache_dir)
        )
        prompts = [f"Generate 4 images of a lighthouse keeper's day, in style number {i}" for i in range(12)]
        sweep = client.sweep(prompts=prompts, seeds=range(12), quiet=True)
        client.wait_all(sweep, timeout=600)
        client.settle(timeout=600)
        runs = list(sweep)
        assert all(r.status == "completed" and len(r.images) == 4 for r in runs)
        warm = Gallery(ImageCache(cache_dir))
        for run in runs:  # every thumbnail made once: both sides below read them from the cache
            for frame in warm.frames(run):
                assert frame.image is not None
                warm.cache.thumbnail(frame.image, THUMB)

        base = live()
        page_s, view = timed(lambda: MatrixView(runs, gallery=Gallery(ImageCache(cache_dir)), thumb=THUMB))
        page_bytes = len(json.dumps(view.snapshot))
        matrix_widgets = live() - base
        view.close()
        full_s, full = timed(
            lambda: MatrixView(runs, gallery=Gallery(ImageCache(cache_dir)), thumb=THUMB, page_rows=12, page_cols=12)
        )
        full_bytes = len(json.dumps(full.snapshot))
        full.close()
        base = live()
        grid_s, (grid, grid_bytes) = timed(lambda: plain_grid(Gallery(ImageCache(cache_dir)), runs))
        grid_widgets = live() - base
        grid.close()
        client.close()

    print(f"12 x 12 matrix of 4-frame series ({len(runs)} runs, {4 * len(runs)} frames), from the cache:")
    print(
        f"  seqnb.matrix, first page (4 x 6):  {page_s:6.3f} s   {page_bytes / 1e3:7.0f} kB sent   {matrix_widgets} widgets"
    )
    print(
        f"  seqnb.matrix, all on one page:     {full_s:6.3f} s   {full_bytes / 1e3:7.0f} kB sent   {matrix_widgets} widgets"
    )
    print(
        f"  plain ipywidgets grid:             {grid_s:6.3f} s   {grid_bytes / 1e3:7.0f} kB sent   {grid_widgets} widgets"
    )
    ok = grid_s / page_s >= 5 and page_bytes < 1_000_000
    print(
        f"grid / matrix first page {grid_s / page_s:5.1f}x, grid / matrix all on one page {grid_s / full_s:4.1f}x; "
        f"goals (first page >= 5x faster, < 1 MB a page): {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
