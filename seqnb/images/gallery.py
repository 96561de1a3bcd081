"""The gallery: each completed run's images fetched into the image cache, recorded, scored, and shown.

A ``Gallery`` ties the parts together for one client: ``image_cache`` (downloads and storage),
``consistency`` (the score), ``render`` (sheets and provenance) and, for widgets,
``seqnb.images.grid``. Every display is made from local bytes.

One bad image never costs the others: a URL that gives nothing becomes a placeholder frame whose
``state`` and ``reason`` say why, recorded in the ledger's image row too. A download started at
completion never raises into the poller: a failure is logged and kept in ``Gallery.errors``. A run has one
download at a time: asking for its frames while its images are being fetched waits for that download.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .._loop import LoopRunner
from ..errors import ImageRefused
from ..runs.run import RunCore, RunEvent
from . import render
from .cache import ImageCache
from .export import save_png
from .hosts import host_entry
from .render import Frame
from .scoring import BUILTIN, Scorer, most_drifting, named_scorer, reference_similarity, score_value
from .store import CachedImage

if TYPE_CHECKING:
    from ..api.backend import Backend
    from ..ledger.facade import Ledger
    from ..ledger.marks import RunMarks

__all__ = ["Gallery", "cores_of"]

log = logging.getLogger(__name__)

SETTLE_MARGIN = 60.0
"""Seconds ``settle()`` allows past the cache's run deadline for scoring and recording."""


def frame_of(index: int, count: int, result: CachedImage | ImageRefused) -> Frame:
    """The frame of one fetched URL: its image, or a placeholder with the refusal's reason."""
    if isinstance(result, CachedImage):
        return Frame(index, count, result, "cached")
    detail = str(result).partition(": ")[2] or str(result)  # "image <url>: <detail>"
    return Frame(index, count, None, result.reason, detail)


@dataclass
class _Fetched:
    """What the gallery learned of one run's images, kept whole: its frames, their score, its reference images and
    each frame's likeness to them (both empty without references)."""

    frames: list[Frame]
    score: float | None
    references: list[Frame] = field(default_factory=list)
    likeness: list[float | None] = field(default_factory=list)


class Gallery:
    """Downloads, frames, contact sheets, provenance-tagged saves and scores for runs.

    ``scorer``: your own score of a series (a function from its frame paths to a number, named by
    its ``__name__`` or given as ``(name, fn)``), used by the views instead of the built-in colour
    and layout similarity, and recorded in the ledger as a ``score`` mark by ``scorer:<name>``.
    """

    def __init__(
        self,
        cache: ImageCache | None = None,
        ledger: Ledger | None = None,
        thumb: int = 192,
        scorer: Scorer | tuple[str, Scorer] | None = None,
    ) -> None:
        self.score_name, self._scorer = named_scorer(scorer)
        """The name the views show the score under (``colour/layout`` for the built-in)."""
        self.cache = cache or ImageCache()
        self.ledger = ledger
        self.thumb = thumb
        self._fetched: dict[str, _Fetched] = {}
        self._runner: LoopRunner | None = None
        self._downloads: dict[str, asyncio.Task[list[Frame]]] = {}
        """Each run's download under way (started at its completion, or asked for): joined, never repeated."""
        self._allowed: set[str] = set()
        self._emulators: set[str] = set()  # the base URLs of the emulators whose runs this gallery downloads
        self.errors: dict[str, str] = {}
        """Run id -> what went wrong beyond single images (download crashed, ledger not written)."""

    # --- getting images --------------------------------------------------------------------

    async def download(self, run: RunCore) -> list[Frame]:
        """Fetch a completed run's images, record them in the ledger, and score the series.

        Never raises for a bad image: each URL that gives nothing is a placeholder frame with its
        reason, and the good frames of the run are kept and recorded. A download of the run already
        under way (the one its completion started) is waited for, not repeated: each image is fetched once.
        """
        task = self._downloads.get(run.id)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._start(run)  # (a task of another loop cannot be awaited here: this loop fetches its own)
        return await asyncio.shield(task)  # a caller that stops waiting leaves the download to the others

    def _start(self, run: RunCore) -> asyncio.Task[list[Frame]]:
        task = asyncio.get_running_loop().create_task(self._fetch(run))
        self._downloads[run.id] = task
        task.add_done_callback(functools.partial(self._finished, run.id))
        return task

    def _finished(self, run_id: str, task: asyncio.Task[list[Frame]]) -> None:
        if self._downloads.get(run_id) is task:
            del self._downloads[run_id]
        if not task.cancelled() and (exc := task.exception()) is not None:  # a bug, not a bad image: logged and kept
            log.error("images of run %s not downloaded", run_id, exc_info=exc)
            self.errors[run_id] = f"download failed: {type(exc).__name__}: {exc}"

    async def _fetch(self, run: RunCore) -> list[Frame]:
        runcomfy_only = run.service not in self._emulators  # a RunComfy run's, or one read from a ledger row
        results = await self.cache.fetch_all(run.images, allow=self._allowed_for(run), runcomfy_only=runcomfy_only)
        frames = [frame_of(index, run.requested, result) for index, result in enumerate(results)]
        frames += [Frame(i, run.requested, None, "not_returned") for i in range(len(results), run.requested)]
        fetched = _Fetched(frames, await asyncio.to_thread(self._score, frames))
        if run.request.references:
            found = await self.cache.fetch_all(list(run.request.references), allow=self._allowed_for(run))
            fetched.references = [frame_of(i, len(found), r) for i, r in enumerate(found)]
            fetched.likeness = await asyncio.to_thread(self._liken, frames, fetched.references)
        self._fetched[run.id] = fetched
        self._record(run, frames[: len(results)], fetched.score)
        return frames

    def _allowed_for(self, run: RunCore) -> set[str]:
        """Hosts this run's images may come from although not public: the clients' whose runs this gallery downloads,
        and the service of the client that owns the run (never a host read from a ledger row)."""
        return self._allowed | {host_entry(run.service)} if run.service else set(self._allowed)

    def _score(self, frames: list[Frame]) -> float | None:
        try:
            return score_value(self._scorer([f.image.path for f in frames if f.image]))
        except Exception as exc:  # a file evicted or unreadable since, or the user's scorer failed: no score
            log.warning("%s score not made: %s: %s", self.score_name, type(exc).__name__, exc)
            return None

    @staticmethod
    def _liken(frames: list[Frame], refs: list[Frame]) -> list[float | None]:
        """Each frame's similarity to the references (None for a frame without an image, or when unscorable)."""
        try:
            scores = iter(
                reference_similarity([f.image.path for f in frames if f.image], [r.image.path for r in refs if r.image])
            )
            return [next(scores, None) if f.image else None for f in frames]
        except Exception as exc:  # like consistency: no score, not a lost run
            log.warning("similarity to references not scored: %s: %s", type(exc).__name__, exc)
            return [None for _ in frames]

    def _record(self, run: RunCore, frames: list[Frame], score: float | None) -> None:
        if self.ledger is None:
            return
        images = {
            frame.index: {
                "path": str(image.path), "width": image.width, "height": image.height, "bytes": image.bytes,
                "sha256": image.sha256, "state": "cached",
            }
            if (image := frame.image) is not None
            else {"state": f"{frame.state}: {frame.reason}"}
            for frame in frames
        }  # fmt: skip
        try:  # the ledger keeps what it cannot write yet, retries it and says so on the run: never lost
            if self.score_name == BUILTIN:
                self.ledger.record_images(run, images, consistency=score)
            else:
                self.ledger.record_images(run, images)
                if score is not None:
                    self.ledger.record_score(run.id, self.score_name, score)
        except Exception as exc:  # the frames are kept in memory and shown; the ledger says nothing new
            log.warning("images of run %s not recorded in the ledger: %s", run.id, exc)
            self.errors[run.id] = f"images not recorded in the ledger: {exc}"

    def frames(self, run: RunCore | Any) -> list[Frame]:
        """The run's frames in order, downloading what is not cached yet (or was evicted since)."""
        return self._known(run).frames

    def _known(self, run: RunCore | Any) -> _Fetched:
        """What is known of the run's images, downloading what is not cached yet (or was evicted since)."""
        core: RunCore = getattr(run, "aio", run)
        known = self._fetched.get(core.id)
        if known is None or any(f.image is not None and not f.image.path.exists() for f in known.frames):
            self._run(self.download(core))
        return self._fetched[core.id]

    def _run(self, coro: Any) -> Any:
        if self._runner is None:
            self._runner = LoopRunner()
        return self._runner.run(coro)

    def serve(self, backend: Backend) -> None:
        """Download the images of a client's runs: from its own service's host too (the emulator serves its images
        itself); a RunComfy run's only from RunComfy's own hosts (and the allowed ones), as RunComfy's tools do."""
        self._allowed.add(host_entry(backend.base_url))
        if backend.kind == "emulator":
            self._emulators.add(backend.base_url)

    def on_event(self, event: RunEvent) -> None:
        """A client's run changed: download its images as soon as it completes (on the client's loop), never raising."""
        if event.new != "completed" or event.old == "completed":
            return
        try:
            self._start(event.run)  # a failure is logged and kept when it ends (``_finished``)
        except Exception as exc:  # never into the poller
            log.error("images of run %s not downloaded: %s", event.run.id, exc)
            self.errors[event.run.id] = f"download not started: {exc}"

    def _running(self) -> list[asyncio.Task[list[Frame]]]:
        """The downloads still running on this loop."""
        loop = asyncio.get_running_loop()
        return [t for t in list(self._downloads.values()) if not t.done() and t.get_loop() is loop]

    async def aclose(self) -> None:
        """Stop the downloads still running (their runs keep their URLs: ``frames`` fetches them again when asked)."""
        running = self._running()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for the downloads under way on this loop (started at completions, ``on_event``); always returns.

        Each download is bounded by the cache's deadlines; ``timeout`` (default: the run deadline
        plus a minute) bounds the wait itself, after which the stragglers are left running and logged.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None else self.cache.run_deadline + SETTLE_MARGIN)
        while running := self._running():
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("settle(): %d image download(s) still running; not waiting longer", len(running))
                return
            await asyncio.wait(running, timeout=remaining)

    def consistency(self, run: RunCore | Any) -> float | None:
        """The run's consistency score (downloading its images first if needed)."""
        return self._known(run).score

    def references(self, run: RunCore | Any) -> list[Frame]:
        """The run's reference images as frames (downloading them with its frames if needed); empty without any."""
        return self._known(run).references

    def reference_similarity(self, run: RunCore | Any) -> list[float | None]:
        """Each frame's similarity to the run's references (0 to 1; None where a frame has no image); empty without any."""
        return self._known(run).likeness

    def most_drifting(self, run: RunCore | Any) -> int | None:
        """The index of the frame least like the references (the one that drifts most), or None."""
        return most_drifting(self.reference_similarity(run))

    def ready(self, run: RunCore | Any) -> bool:
        """Whether the run's frames are known, so ``frames`` answers without a download."""
        return getattr(run, "aio", run).id in self._fetched

    def score(self, run: RunCore | Any) -> float | None:
        """The score already known for a run (no download): the scorer's, else the built-in one; or None."""
        known = self._fetched.get(getattr(run, "aio", run).id)
        return known.score if known is not None else None

    def marks_of(self, runs: Iterable[RunCore]) -> dict[str, RunMarks]:
        """The runs' marks as they stand (ratings, verdicts), for captions; none without a ledger or when it fails."""
        if self.ledger is None:
            return {}
        try:
            return self.ledger.marks_of([r.id for r in runs])
        except Exception as exc:  # a caption without marks, never a grid that fails
            log.warning("marks not read for the captions: %s", exc)
            return {}

    # --- pictures --------------------------------------------------------------------------

    def sheet(self, runs: RunCore | Any | Iterable[Any], size: int | None = None) -> Image.Image:
        """A contact sheet: one row per run, columns aligned by frame index, labelled."""
        cores = cores_of(runs)
        rows = [(run, self.frames(run), self.score(run)) for run in cores]
        return render.sheet(self.cache, rows, size or self.thumb, self.score_name, self.marks_of(cores))

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
        """Save a run's frames as PNGs carrying their provenance (``export.save_png``): an unreadable one is left out."""
        core: RunCore = getattr(run, "aio", run)
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        return [p for f in self.frames(core) if f.image is not None and (p := save_png(core, f, out)) is not None]


def cores_of(runs: Any) -> list[RunCore]:
    """The run states of a run (``RunCore``, ``AsyncRun`` or a sync ``Run``), or of an iterable of them."""
    if isinstance(runs, RunCore) or hasattr(runs, "aio"):
        runs = [runs]
    return [getattr(r, "aio", r) for r in runs]
