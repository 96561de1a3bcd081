"""The gallery: result images fetched by the kernel into a content-addressed cache, thumbnails, grids.

Result URLs expire, and on Binder the browser cannot reach a URL only the kernel can: images are
downloaded as soon as a run completes (with a client that never carries the API token), kept by
content hash, and every display is made from local bytes. Grids are built from small cached
thumbnails, never from full images inlined into the notebook.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from ._loop import LoopRunner
from .errors import SeqnbError
from .runs import RunCore, RunEvent

if TYPE_CHECKING:
    import ipywidgets

    from .client import AsyncClient, Client
    from .ledger import Ledger

__all__ = [
    "MAX_IMAGE_BYTES",
    "CachedImage",
    "Frame",
    "Gallery",
    "ImageCache",
    "ImageRefused",
    "compare_grid",
    "consistency",
    "contact_sheet",
    "default_cache_dir",
    "default_gallery",
]

MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""The model pages recommend images of at most 50 MB."""


def default_cache_dir() -> Path:
    """``$SEQNB_CACHE``, else ``~/.cache/seqnb/images``."""
    return Path(os.environ.get("SEQNB_CACHE") or Path.home() / ".cache" / "seqnb" / "images").expanduser()


class ImageRefused(SeqnbError):
    """An image URL gave nothing usable; ``reason`` is expired, too_large, not_an_image, bomb or unreachable."""

    def __init__(self, url: str, reason: str, detail: str) -> None:
        self.url = url
        self.reason = reason
        shown = url if not url.startswith("data:") else url[:40] + "..."
        super().__init__(f"image {shown}: {detail}")


@dataclass(frozen=True)
class CachedImage:
    """One downloaded, verified image in the cache."""

    url: str
    path: Path
    sha256: str
    width: int
    height: int
    bytes: int
    format: str


@dataclass(frozen=True)
class Frame:
    """One place in a series: its image if there is one, else why not (missing, not_returned)."""

    index: int
    count: int
    image: CachedImage | None = None
    state: str = "cached"


class ImageCache:
    """Content-addressed images on disk, downloaded without the API token."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.hits = 0
        self.downloads = 0

    # --- layout -----------------------------------------------------------------------------

    def _object(self, sha: str, ext: str) -> Path:
        return self.directory / "objects" / sha[:2] / f"{sha}.{ext}"

    def _url_key(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / "urls" / key[:2] / key

    def lookup(self, url: str) -> CachedImage | None:
        """The cached image of a URL, if it was fetched before."""
        index = self._url_key(url)
        try:
            record = json.loads(index.read_text())
        except (OSError, ValueError):
            return None
        path = self._object(record["sha256"], record["ext"])
        if not path.exists():
            return None
        return CachedImage(
            url, path, record["sha256"], record["width"], record["height"], record["bytes"], record["format"]
        )

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- fetching ---------------------------------------------------------------------------

    def _verify(self, url: str, data: bytes) -> tuple[str, int, int]:
        """Decode with Pillow's decompression-bomb guard on; returns (format, width, height)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:
                    fmt, (width, height) = (img.format or "").lower(), img.size
                    img.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(url, "bomb", f"refused as a decompression bomb ({exc})") from None
        except Exception as exc:
            raise ImageRefused(url, "not_an_image", f"is not a readable image ({type(exc).__name__}: {exc})") from None
        if fmt not in ("jpeg", "png", "webp", "gif", "bmp", "tiff"):
            raise ImageRefused(url, "not_an_image", f"has unsupported image format {fmt!r}")
        return fmt, width, height

    def store(self, url: str, data: bytes) -> CachedImage:
        """Verify bytes and keep them under their hash, indexed by URL."""
        if len(data) > self.max_bytes:
            raise ImageRefused(url, "too_large", f"is {len(data):,} bytes, over the {self.max_bytes:,}-byte cap")
        fmt, width, height = self._verify(url, data)
        sha = hashlib.sha256(data).hexdigest()
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        path = self._object(sha, ext)
        if not path.exists():
            self._atomic_write(path, data)
        record = {"sha256": sha, "ext": ext, "width": width, "height": height, "bytes": len(data), "format": fmt}
        self._atomic_write(self._url_key(url), json.dumps(record).encode())
        return CachedImage(url, path, sha, width, height, len(data), fmt)

    async def _download(self, http: httpx.AsyncClient, url: str) -> bytes:
        async with http.stream("GET", url) as response:
            if response.status_code in (403, 404, 410):
                raise ImageRefused(
                    url, "expired", f"is gone (HTTP {response.status_code}): the URL expired or never existed"
                )
            if response.status_code >= 400:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise ImageRefused(url, "not_an_image", f"is served as {kind or 'no content type'!r}, not an image")
            declared = int(response.headers.get("content-length") or 0)
            if declared > self.max_bytes:
                raise ImageRefused(url, "too_large", f"is {declared:,} bytes, over the {self.max_bytes:,}-byte cap")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise ImageRefused(url, "too_large", f"is over the {self.max_bytes:,}-byte cap")
                chunks.append(chunk)
            return b"".join(chunks)

    async def fetch(self, url: str, http: httpx.AsyncClient | None = None) -> CachedImage:
        """The image at ``url``: from the cache, a ``data:`` URI, or downloaded (retried on 5xx and network errors)."""
        cached = self.lookup(url)
        if cached is not None:
            self.hits += 1
            return cached
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if not header.startswith("data:image/") or ";base64" not in header:
                raise ImageRefused(url, "not_an_image", "is a data: URI that is not a base64 image")
            try:
                data = base64.b64decode(payload, validate=True)
            except binascii.Error:
                raise ImageRefused(url, "not_an_image", "is a data: URI with broken base64") from None
            return await asyncio.to_thread(self.store, url, data)
        owned = http is None
        # A client of its own: no Authorization header ever goes to the file host.
        http = http or httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        try:
            for attempt in range(self.retries):
                try:
                    data = await self._download(http, url)
                    break
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    if attempt + 1 >= self.retries:
                        raise ImageRefused(
                            url, "unreachable", f"could not be downloaded ({type(exc).__name__}: {exc})"
                        ) from None
                    await asyncio.sleep(0.25 * 2**attempt)
        finally:
            if owned:
                await http.aclose()
        self.downloads += 1
        return await asyncio.to_thread(self.store, url, data)

    async def fetch_all(self, urls: Sequence[str], concurrency: int = 6) -> list[CachedImage | ImageRefused]:
        """Every URL, ``concurrency`` at a time; refusals are returned in place, not raised."""
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as http:

            async def one(url: str) -> CachedImage | ImageRefused:
                async with gate:
                    try:
                        return await self.fetch(url, http)
                    except ImageRefused as exc:
                        return exc

            return list(await asyncio.gather(*(one(u) for u in urls)))

    # --- thumbnails --------------------------------------------------------------------------

    def thumbnail(self, image: CachedImage, size: int = 256) -> Path:
        """A JPEG no larger than ``size`` on its longer side, cached next to the originals."""
        path = self.directory / "thumbs" / image.sha256[:2] / f"{image.sha256}-{size}.jpg"
        if path.exists():
            return path
        with Image.open(image.path) as source:
            source.draft("RGB", (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale directly
            small = source.convert("RGB")
            small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=85)
        self._atomic_write(path, buf.getvalue())
        return path


# --- consistency -------------------------------------------------------------------------------


def _signature(path: Path) -> tuple[list[float], list[float]]:
    with Image.open(path) as img:
        img.draft("RGB", (64, 64))
        small = img.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    hist = small.histogram()  # 3 x 256
    binned = [sum(hist[c * 256 + b * 16 : c * 256 + b * 16 + 16]) for c in range(3) for b in range(16)]
    total = float(sum(binned)) or 1.0
    gray = [float(v) for v in small.convert("L").tobytes()]
    mean = sum(gray) / len(gray)
    centred = [v - mean for v in gray]
    norm = sum(v * v for v in centred) ** 0.5 or 1.0
    return [b / total for b in binned], [v / norm for v in centred]


def consistency(paths: Sequence[Path]) -> float | None:
    """How alike the frames of one series are, from 0 to 1 (None for fewer than two frames).

    The mean over every pair of frames of: half the colour-histogram intersection (3 x 16 bins,
    1 for the same palette) plus half the correlation of their 32x32 grayscale images (1 for the
    same layout, 0 for unrelated or inverted ones). Deterministic: the same files always give the
    same score. Pure noise scores about 0.5 (same flat palette, no shared structure).
    """
    if len(paths) < 2:
        return None
    sigs = [_signature(p) for p in paths]
    scores = []
    for (h1, g1), (h2, g2) in combinations(sigs, 2):
        colour = sum(min(a, b) for a, b in zip(h1, h2, strict=True))  # both histograms sum to 1
        structure = max(0.0, sum(a * b for a, b in zip(g1, g2, strict=True)))  # unrelated or inverted: 0
        scores.append(0.5 * colour + 0.5 * structure)
    return round(sum(scores) / len(scores), 4)


# --- drawing -----------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):
        return ImageFont.load_default()


def _placeholder(size: int, text: str) -> Image.Image:
    tile = Image.new("RGB", (size, size), (236, 236, 236))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(190, 190, 190), width=2)
    draw.text((size / 2, size / 2), text, fill=(120, 120, 120), font=_font(max(11, size // 14)), anchor="mm")
    return tile


def provenance(run: RunCore, frame: int | None = None) -> dict[str, Any]:
    """What a saved file must say about where it came from (never the token)."""
    resolved = run.request.resolved()
    return {
        "model": run.model,
        "prompt": run.request.prompt,
        "seed": resolved.get("seed"),
        "size": resolved.get("size"),
        "count": run.requested,
        "frame": frame,
        "request_id": run.request_id,
        "run_id": run.id,
        "payload": run.request.payload(),
    }


def _png_info(meta: dict[str, Any]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("seqnb", json.dumps(meta, ensure_ascii=False, default=str))
    if meta.get("prompt") is not None:  # the A1111 convention, read by many image tools
        info.add_itxt(
            "parameters",
            f"{meta['prompt']}\nSeed: {meta.get('seed')}, Size: {meta.get('size')}, Model: {meta.get('model')}, "
            f"Frame: {meta.get('frame')}, Request: {meta.get('request_id')}",
        )
    return info


def differing_labels(runs: Sequence[RunCore]) -> list[str]:
    """Row labels naming only what differs between the runs (model, prompt, seed, size, count)."""
    keys = ("model", "prompt", "seed", "size", "count")
    values = [{k: r.request.resolved().get(k) if k != "count" else r.requested for k in keys} for r in runs]
    differ = [k for k in keys if len({repr(v[k]) for v in values}) > 1] or ["seed"]

    def show(key: str, value: Any) -> str:
        if key == "model":
            from .spec import get_model

            return get_model(str(value)).short_name
        text = str(value)
        return text if len(text) <= 40 else text[:39] + "…"

    return [", ".join(f"{k}={show(k, v[k])}" for k in differ) for v in values]


# --- the gallery ---------------------------------------------------------------------------------


class Gallery:
    """Downloads, grids, contact sheets, provenance-tagged saves and consistency scores for runs."""

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
        global _default
        aio = getattr(client, "aio", client)

        def on_event(event: RunEvent) -> None:
            if event.new == "completed" and event.old != "completed":
                task = asyncio.get_running_loop().create_task(self.download(event.run))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

        aio.subscribe(on_event)
        _default = self
        return self

    async def settle(self) -> None:
        """Wait for downloads started by ``attach`` to finish."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def consistency(self, run: RunCore | Any) -> float | None:
        """The run's consistency score (downloading its images first if needed)."""
        self.frames(run)
        return self._scores.get(getattr(run, "aio", run).id)

    # --- pictures --------------------------------------------------------------------------

    def _tile(self, frame: Frame, size: int) -> Image.Image:
        if frame.image is None:
            return _placeholder(size, "expired" if frame.state == "missing" else "not returned")
        with Image.open(self.cache.thumbnail(frame.image, size)) as thumb:
            return thumb.convert("RGB")

    def sheet(self, runs: RunCore | Any | Iterable[Any], size: int | None = None) -> Image.Image:
        """A contact sheet: one row per run, columns aligned by frame index, labelled."""
        cores = _cores(runs)
        size = size or self.thumb
        columns = max((r.requested for r in cores), default=1)
        label_h = max(16, size // 9)
        caption_h = max(14, size // 11)
        pad = max(4, size // 32)
        row_h = label_h + size + caption_h + pad
        width = pad + columns * (size + pad)
        sheet = Image.new("RGB", (width, pad + row_h * len(cores)), "white")
        draw = ImageDraw.Draw(sheet)
        label_font, caption_font = _font(max(11, label_h - 4)), _font(max(10, caption_h - 3))
        for row, (run, label) in enumerate(zip(cores, differing_labels(cores), strict=True)):
            y = pad + row * row_h
            score = self._score(run)
            extra = f"  consistency {score:.2f}" if score is not None else ""
            short = f"  ({len(run.images)} of {run.requested} returned)" if run.short else ""
            size_name = run.request.resolved().get("size")
            size_text = f"  {size_name}" if size_name and "size=" not in label else ""
            draw.text((pad, y), f"{label}{size_text}{short}{extra}", fill=(20, 20, 20), font=label_font)
            for frame in self.frames(run):
                x = pad + frame.index * (size + pad)
                tile = self._tile(frame, size)
                sheet.paste(tile, (x + (size - tile.width) // 2, y + label_h + (size - tile.height) // 2))
                draw.text(
                    (x, y + label_h + size + 1),
                    f"{frame.index + 1}/{frame.count}",
                    fill=(90, 90, 90),
                    font=caption_font,
                )
        return sheet

    def _score(self, run: RunCore) -> float | None:
        return self._scores.get(run.id)

    def contact_sheet(self, runs: Any, path: str | os.PathLike[str], size: int | None = None) -> Path:
        """Write the contact sheet of ``runs`` as a PNG carrying each run's provenance."""
        cores = _cores(runs)
        target = Path(path)
        image = self.sheet(cores, size)
        meta = {"runs": [provenance(r) for r in cores]}
        info = _png_info(meta)
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
                img.save(target, format="PNG", pnginfo=_png_info(provenance(core, frame.index)))
            written.append(target)
        return written

    # --- widgets ---------------------------------------------------------------------------

    def grid(self, runs: Any, size: int | None = None, enlarge: int = 1024) -> ipywidgets.VBox:
        """An ipywidgets grid: one row per run (label above, frames in order, aligned by index); click to enlarge.

        Returns ``VBox([rows, caption, viewer])``; each row is ``VBox([label, HBox(cells)])``.
        """
        import ipywidgets as w

        cores = _cores(runs)
        size = size or self.thumb
        viewer = w.Image(format="jpeg", layout=w.Layout(max_width=f"{enlarge}px", display="none"))
        viewer_caption = w.HTML()
        rows: list[w.Widget] = []
        for run, label in zip(cores, differing_labels(cores), strict=True):
            frames = self.frames(run)
            score = self._score(run)
            size_name = run.request.resolved().get("size")
            bits = [label] + ([str(size_name)] if size_name and "size=" not in label else [])
            bits += [f"consistency {score:.2f}"] if score is not None else []
            if run.short:
                bits.append(f"{len(run.images)} of {run.requested} returned")
            header = w.HTML(f"<b>{_escape(' · '.join(bits))}</b>")
            cells = [self._cell(run, frame, size, viewer, viewer_caption, enlarge) for frame in frames]
            rows.append(w.VBox([header, w.HBox(cells, layout=w.Layout(grid_gap="4px"))]))
        return w.VBox([w.VBox(rows), viewer_caption, viewer])

    def _cell(self, run: RunCore, frame: Frame, size: int, viewer: Any, caption: Any, enlarge: int) -> Any:
        import ipywidgets as w

        tile = self._tile(frame, size)
        buf = io.BytesIO()
        tile.save(buf, format="JPEG", quality=85)
        image = w.Image(value=buf.getvalue(), format="jpeg", layout=w.Layout(width=f"{tile.width}px"))
        seed = run.request.resolved().get("seed")
        text = f"{frame.index + 1}/{frame.count} · seed {seed}"
        button = w.Button(
            description=text, tooltip="enlarge" if frame.image else frame.state,
            disabled=frame.image is None, layout=w.Layout(width=f"{size}px"),
        )  # fmt: skip

        def show(_: Any = None) -> None:
            if frame.image is None:
                return
            viewer.value = self.cache.thumbnail(frame.image, enlarge).read_bytes()
            viewer.layout.display = ""
            caption.value = f"<b>{_escape(text)}</b> · {frame.image.width}x{frame.image.height} · run {run.id}"

        button.on_click(show)
        cell = w.VBox([image, button], layout=w.Layout(width=f"{size + 8}px", align_items="center"))
        cell.show = show  # the click action, callable from tests and scripts
        return cell


_default: Gallery | None = None


def default_gallery() -> Gallery:
    """The gallery of the latest ``seqnb.connect()``, else a new one over the default cache."""
    global _default
    if _default is None:
        _default = Gallery()
    return _default


def compare_grid(runs: Any, size: int | None = None) -> ipywidgets.VBox:
    """Several runs as one grid widget: a row per run, frames aligned, labels naming what differs."""
    return default_gallery().grid(runs, size)


def contact_sheet(runs: Any, path: str | os.PathLike[str], size: int | None = None) -> Path:
    """Several runs as a PNG contact sheet carrying their provenance."""
    return default_gallery().contact_sheet(runs, path, size)


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _cores(runs: Any) -> list[RunCore]:
    if isinstance(runs, RunCore) or hasattr(runs, "aio"):
        runs = [runs]
    return [getattr(r, "aio", r) for r in runs]
