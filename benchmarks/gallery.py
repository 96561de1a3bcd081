"""Grids of big series: seqnb's cached thumbnails against the naive way (open every full image, inline it).

    python benchmarks/gallery.py

For a run of 15 images of 2048x2048 and one of 15 of 4096x4096 (drawn by the emulator, served over
loopback): the time to the first grid (download + thumbnails + grid widget), the time from the
cache (a second grid in a new session), the size the grid puts into the notebook, and the peak
memory growth of each, against the naive approach in the same run: open every full image and
embed it inline as PNG. Goals: cached grid at least 10x faster than naive; peak memory growth
under 200 MB for the 4096 run.
"""

from __future__ import annotations

import base64
import gc
import io
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

import seqnb
from seqnb import Gallery, ImageCache
from seqnb.images.grid import grid
from seqnb.testing import emulator


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds, peak resident memory growth in MB during the call, result).

    Pillow allocates image memory in C, out of tracemalloc's sight, so the kernel's own peak
    (VmHWM, reset through /proc/self/clear_refs) is what is read.
    """
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return seconds, (_status("VmHWM") - before) / 1e6, result


def widget_bytes(box: Any) -> int:
    """The image bytes the grid puts into the notebook: ``VBox([rows, caption, viewer])``, rows of ``[label, cells]``."""
    rows = box.children[0].children
    return sum(len(cell.children[0].value) for row in rows for cell in row.children[1].children)


def naive(urls: list[str]) -> int:
    """What people do today: fetch, open every full image, and embed it inline as PNG."""
    total = 0
    for url in urls:
        img = Image.open(io.BytesIO(httpx.get(url, timeout=60).content))
        img.load()
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        total += len(base64.b64encode(buf.getvalue()))
    return total


def cached_grid(run: seqnb.Run, cache_dir: Path) -> Any:
    """seqnb's grid of a run, from a gallery over the image cache in ``cache_dir``."""
    return grid(Gallery(ImageCache(cache_dir), thumb=192), [run])


def main() -> None:
    with emulator(queue_wait=0, service_time=0.05, workers=4) as emu, tempfile.TemporaryDirectory() as tmp:
        client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
        import ipywidgets  # noqa: F401  (imports are not what is measured)

        for side, size in ((2048, "2048x2048 (1:1)"), (4096, "4096x4096 (1:1)")):
            run = client.submit(
                seqnb.Request("seedream-4.5", f"Generate 15 images of a lighthouse {side}", count=15, size=size, seed=1)
            ).wait(60)
            for url in run.images:  # have the emulator draw them once, so both sides time only fetching and showing
                httpx.get(url, timeout=120)
            cache_dir = Path(tmp) / f"cache{side}"

            first_s, first_mb, box = measure(partial(cached_grid, run, cache_dir))
            cached_s, cached_mb, box2 = measure(partial(cached_grid, run, cache_dir))
            naive_s, naive_mb, inline = measure(partial(naive, run.images))
            print(
                f"15 x {side}x{side}: first grid {first_s:6.2f} s (peak +{first_mb:5.0f} MB)   from cache {cached_s:5.3f} s "
                f"(peak +{cached_mb:4.0f} MB, {widget_bytes(box2) / 1e6:.2f} MB in the notebook)   naive {naive_s:6.2f} s "
                f"(peak +{naive_mb:5.0f} MB, {inline / 1e6:.0f} MB inline)   naive / cached {naive_s / cached_s:5.1f}x"
            )
            if side == 4096:
                ok = naive_s / cached_s >= 10 and max(first_mb, cached_mb) < 200
                print(
                    f"goals (cached >= 10x faster than naive, peak growth < 200 MB at 4096): {'met' if ok else 'NOT met'}"
                )
            del box
        client.close()


if __name__ == "__main__":
    main()
