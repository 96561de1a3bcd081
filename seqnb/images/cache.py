"""The image cache: result images downloaded without the API token, verified, kept by content hash.

Result URLs expire, and on Binder the browser cannot reach a URL only the kernel can: images are
downloaded as soon as a run completes (``seqnb.images.download``, never with the token), checked and kept
on disk (``seqnb.images.store``). Nothing waits forever and one bad URL never costs the others: each file and
each run has a deadline, and every failure of one URL comes back as an ``ImageRefused`` in its place.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

from ..errors import ImageRefused
from ..model.references import StandIn
from .download import data_uri_bytes, download, image_client, refusal
from .hosts import HostPolicy
from .store import MAX_IMAGE_BYTES, CachedImage, ImageStore

__all__ = ["ImageCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$SEQNB_CACHE``, else ``~/.cache/seqnb/images``."""
    return Path(os.environ.get("SEQNB_CACHE") or Path.home() / ".cache" / "seqnb" / "images").expanduser()


class ImageCache(ImageStore):
    """Content-addressed images on disk, downloaded without the API token, within deadlines and a size limit.

    ``timeout`` bounds each network operation (connect, one read); ``file_deadline`` the whole
    download of one file, retries included; ``run_deadline`` all the files of one ``fetch_all``.
    ``allow_hosts`` (``name`` or ``name:port``, added to ``$SEQNB_ALLOW_IMAGE_HOSTS``) may be
    reached although they are not public, and a RunComfy run's images may come from them although they are not
    RunComfy's. ``max_total_bytes`` (default ``$SEQNB_CACHE_MAX_BYTES``
    or 2 GiB) is the cache's size limit. Storage, thumbnails and pruning are ``ImageStore``'s.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        timeout: float = 30.0,
        retries: int = 3,
        file_deadline: float = 60.0,
        run_deadline: float = 180.0,
        concurrency: int = 6,
        allow_hosts: Iterable[str] = (),
        max_total_bytes: int | None = None,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.file_deadline = file_deadline
        self.run_deadline = run_deadline
        self.concurrency = concurrency
        self.policy = HostPolicy.of(allow_hosts)
        super().__init__(
            directory if directory is not None else default_cache_dir(),
            max_bytes=max_bytes,
            max_total_bytes=max_total_bytes,
        )
        self.downloads = 0

    async def _fetch(self, url: str, http: httpx.AsyncClient) -> CachedImage:
        cached = self.lookup(url)
        if cached is not None:
            return cached
        stand_in = StandIn.parse(url)
        if stand_in is not None:  # an inline reference: its bytes were kept here, under their hash
            found = await asyncio.to_thread(self.find, url, stand_in.sha256)
            if found is None:
                raise ImageRefused(url, "gone", f"is an inline image no longer in the image cache {self.directory}")
            return found
        if url.startswith("data:"):
            return await asyncio.to_thread(self.store, url, data_uri_bytes(url))
        data = await download(http, url, max_bytes=self.max_bytes, retries=self.retries)
        self.downloads += 1
        return await asyncio.to_thread(self.store, url, data)

    async def fetch(self, url: str, *, allow: Iterable[str] = ()) -> CachedImage:
        """The image at ``url`` (``fetch_all``), or its ``ImageRefused`` raised."""
        (result,) = await self.fetch_all([url], allow=allow)
        if isinstance(result, ImageRefused):
            raise result
        return result

    async def fetch_all(
        self, urls: Sequence[str], *, allow: Iterable[str] = (), runcomfy_only: bool = False
    ) -> list[CachedImage | ImageRefused]:
        """Every URL's image, ``concurrency`` at a time, within ``run_deadline``: from the cache (an inline reference's
        stand-in by its hash), a ``data:`` URI, or downloaded (retried on 5xx and network errors). Never raises: each
        failure is an ``ImageRefused`` in its place, saying why. ``allow`` adds hosts that may be reached although not
        public; ``runcomfy_only``: downloaded from RunComfy's own hosts only (and ``allow`` and the allowed hosts): a
        RunComfy run's images, as RunComfy's own tools fetch them."""
        results: list[CachedImage | ImageRefused | None] = [self.lookup(url) for url in urls]
        wanted = [i for i, found in enumerate(results) if found is None]
        if wanted:
            gate = asyncio.Semaphore(self.concurrency)
            timeout = min(self.timeout, self.file_deadline)
            async with image_client(self.policy, timeout, allow, runcomfy_only=runcomfy_only) as http:

                async def one(url: str) -> CachedImage:
                    async with gate, asyncio.timeout(self.file_deadline):  # the file's deadline starts at its turn
                        return await self._fetch(url, http)

                tasks = {i: asyncio.create_task(one(urls[i])) for i in wanted}
                try:
                    await asyncio.wait(tasks.values(), timeout=self.run_deadline)
                finally:
                    for task in tasks.values():
                        task.cancel()  # those still running are past the run's deadline; a no-op for the others
                await asyncio.wait(tasks.values())
            for i, task in tasks.items():
                if task.cancelled():
                    results[i] = ImageRefused(
                        urls[i],
                        "timeout",
                        f"was not downloaded within the {self.run_deadline:g} s allowed for one run; "
                        "try again later, or allow more with ImageCache(run_deadline=...)",
                    )
                elif (error := task.exception()) is not None:  # one URL's failure is that URL's refusal
                    results[i] = refusal(urls[i], error, file_deadline=self.file_deadline, directory=self.directory)
                else:
                    results[i] = task.result()
        return [r for r in results if r is not None]
