"""The gallery: each completed run's images fetched into the image cache, recorded, scored, and shown.

A ``Gallery`` ties the parts together for one client: ``image_cache`` (downloads and storage),
``consistency`` (the score), ``render`` (sheets and provenance) and, for widgets,
``seqnb.ui.gallery_view``. Every display is made from local bytes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from . import render
from ._loop import LoopRunner
from .consistency import consistency
from .image_cache import CachedImage, ImageCache
from .render import Frame
from .runs import AsyncRun, RunCore, RunEvent

if TYPE_CHECKING:
    import ipywidgets

    from .client import AsyncClient, Client
    from .ledger import Ledger

__all__ = ["Gallery", "compare_grid", "contact_sheet", "gallery_of"]


class Gallery:
    """Downloads, frames, contact sheets, provenance-tagged saves and consistency scores for runs."""

    def __init__(self, cache: ImageCache | None = None, ledger: Ledger | None = None, thumb: int = 192) -> None:
        self.cache = cache or ImageCache()
        self.ledger = ledger
        self.thumb = thumb
        self._frames: dict[str, list[Frame]] = {}
        self._scores: dict[str, float | None] = {}
        self._runner: LoopRunner | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    # --- getting images --------------------------------------------------------------------

    async def download(self, run: RunCore) -> list[Frame]:
        """Fetch a completed run's images, record them in the ledger, and score the series."""
        results = await self.cache.fetch_all(run.images)
        frames: list[Frame] = []
        for index, result in enumerate(results):
            if isinstance(result, CachedImage):
                frames.append(Frame(index, run.requested, result, "cached"))
            else:
                frames.append(Frame(index, run.requested, None, "missing"))
        frames += [Frame(i, run.requested, None, "not_returned") for i in range(len(results), run.requested)]
        score = await asyncio.to_thread(consistency, [f.image.path for f in frames if f.image])
        self._scores[run.id] = score
        self._frames[run.id] = frames
        if self.ledger is not None:
            for frame in frames[: len(results)]:
                image = frame.image
                if image is not None:
                    self.ledger.record_image(
                        run.id, frame.index, path=str(image.path), width=image.width, height=image.height,
                        bytes=image.bytes, sha256=image.sha256, state="cached",
                    )  # fmt: skip
                else:
                    self.ledger.record_image(run.id, frame.index, state="missing")
            self.ledger.set_consistency(run.id, score)
        return frames

    def frames(self, run: RunCore | Any) -> list[Frame]:
        """The run's frames in order, downloading what is not cached yet."""
        core: RunCore = getattr(run, "aio", run)
        if core.id not in self._frames:
            self._run(self.download(core))
        return self._frames[core.id]

    def _run(self, coro: Any) -> Any:
        if self._runner is None:
            self._runner = LoopRunner()
        return self._runner.run(coro)

    def attach(self, client: Client | AsyncClient) -> Gallery:
        """Download every run of this client as soon as it completes (on the client's loop)."""
        aio: AsyncClient = client.aio if hasattr(client, "aio") else client

        def on_event(event: RunEvent) -> None:
            if event.new == "completed" and event.old != "completed":
                task = asyncio.get_running_loop().create_task(self.download(event.run))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

        aio.subscribe(on_event)
        aio.gallery = self
        return self

    async def settle(self) -> None:
        """Wait for downloads started by ``attach`` to finish."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def consistency(self, run: RunCore | Any) -> float | None:
        """The run's consistency score (downloading its images first if needed)."""
        self.frames(run)
        return self._scores.get(getattr(run, "aio", run).id)

    def ready(self, run: RunCore | Any) -> bool:
        """Whether the run's frames are known, so ``frames`` answers without a download."""
        return getattr(run, "aio", run).id in self._frames

    def score(self, run: RunCore | Any) -> float | None:
        """The consistency score already known for a run (no download), or None."""
        return self._scores.get(getattr(run, "aio", run).id)

    # --- pictures --------------------------------------------------------------------------

    def sheet(self, runs: RunCore | Any | Iterable[Any], size: int | None = None) -> Image.Image:
        """A contact sheet: one row per run, columns aligned by frame index, labelled."""
        rows = [(run, self.frames(run), self.score(run)) for run in cores_of(runs)]
        return render.sheet(self.cache, rows, size or self.thumb)

    def contact_sheet(self, runs: Any, path: str | os.PathLike[str], size: int | None = None) -> Path:
        """Write the contact sheet of ``runs`` as a PNG carrying each run's provenance."""
        cores = cores_of(runs)
        target = Path(path)
        image = self.sheet(cores, size)
        info = render.png_info({"runs": [render.provenance(r) for r in cores]})
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, format="PNG", pnginfo=info)
        return target

    def save(self, run: Any, directory: str | os.PathLike[str]) -> list[Path]:
        """Save a run's frames as PNGs carrying model, prompt, seed, size, request id and run id."""
        core: RunCore = getattr(run, "aio", run)
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for frame in self.frames(core):
            if frame.image is None:
                continue
            target = out / f"{core.id}-{frame.index + 1:02d}of{frame.count:02d}.png"
            with Image.open(frame.image.path) as img:
                img.save(target, format="PNG", pnginfo=render.png_info(render.provenance(core, frame.index)))
            written.append(target)
        return written

    def grid(self, runs: Any, size: int | None = None, enlarge: int = 1024) -> ipywidgets.VBox:
        """The runs as an ipywidgets grid (see ``seqnb.ui.gallery_view.grid``)."""
        from .ui.gallery_view import grid  # the widgets load only when a grid is asked for

        return grid(self, runs, size, enlarge)


def cores_of(runs: Any) -> list[RunCore]:
    """The run cores of a run, a sync ``Run``, or an iterable of either."""
    if isinstance(runs, RunCore) or hasattr(runs, "aio"):
        runs = [runs]
    return [getattr(r, "aio", r) for r in runs]


def gallery_of(runs: Any) -> Gallery:
    """The gallery of the runs' own client (``seqnb.connect`` attaches one), else a new one over the default cache."""
    for core in cores_of(runs):
        gallery = core.client.gallery if isinstance(core, AsyncRun) and core.bound else None
        if isinstance(gallery, Gallery):
            return gallery
    return Gallery()


def compare_grid(runs: Any, size: int | None = None) -> ipywidgets.VBox:
    """Several runs as one grid widget: a row per run, frames aligned, labels naming what differs."""
    return gallery_of(runs).grid(runs, size)


def contact_sheet(runs: Any, path: str | os.PathLike[str], size: int | None = None) -> Path:
    """Several runs as a PNG contact sheet carrying their provenance."""
    return gallery_of(runs).contact_sheet(runs, path, size)
