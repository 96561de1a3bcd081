"""Pictures of series: tiles, labelled contact sheets, and the provenance saved files carry (no I/O but the cache)."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, PngImagePlugin

from .._fonts import font
from ..model.labels import labels, named_with, says, show_value
from ..runs.run import RunCore
from .scoring import BUILTIN, separating
from .store import CachedImage, ImageStore

if TYPE_CHECKING:
    from ..ledger.marks import RunMarks

__all__ = [
    "LABELS",
    "Frame",
    "data_uri",
    "differing_labels",
    "frame_label",
    "placeholder",
    "png_info",
    "provenance",
    "row_caption",
    "row_tiles",
    "sheet",
    "tile",
]

log = logging.getLogger(__name__)

LABELS = {
    "expired": "expired",
    "not_returned": "not returned",
    "blocked": "blocked host",
    "invalid": "invalid URL",
    "unreachable": "unreachable",
    "timeout": "timed out",
    "too_large": "too large",
    "not_an_image": "not an image",
    "bomb": "refused (bomb)",
    "disk": "disk error",
    "evicted": "not in cache",
    "outside": "no image",
    "error": "failed",
}
"""What a placeholder tile says for each frame state (the ``ImageRefused`` reasons and the gallery's own)."""


@dataclass(frozen=True)
class Frame:
    """One place in a series: its image if there is one, else why not.

    ``state`` is ``cached``, ``not_returned`` (the service sent fewer images than asked), or the
    reason an image URL gave nothing (an ``ImageRefused`` reason: expired, blocked, timeout, disk,
    ...); ``reason`` says it in words, for the tile and the ledger.
    """

    index: int
    count: int
    image: CachedImage | None = None
    state: str = "cached"
    reason: str = ""


def frame_label(frame: Frame) -> str:
    """A short word or two for a frame without an image (``timed out``, ``blocked host``)."""
    return LABELS.get(frame.state, frame.state.replace("_", " "))


def placeholder(size: int, text: str, detail: str = "", height: int | None = None) -> Image.Image:
    """A grey tile ``size`` wide (and ``height`` high, else square) saying ``text``, and as much of ``detail`` as fits."""
    high = height or size
    tile = Image.new("RGB", (size, high), (236, 236, 236))
    tile.info["placeholder"] = True
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, size - 1, high - 1), outline=(190, 190, 190), width=2)
    big = max(11, size // 14)
    if not detail:
        draw.text((size / 2, high / 2), text, fill=(120, 120, 120), font=font(big), anchor="mm")
        return tile
    draw.text((size / 2, high / 5), text, fill=(110, 110, 110), font=font(big), anchor="mm")
    small = max(9, size // 22)
    width = max(8, int((size - 8) / (small * 0.55)))
    room = max(1, int((high - high / 5 - big) / (small + 2)))
    lines = textwrap.wrap(detail, width)[:room]
    draw.multiline_text(
        (size / 2, high / 5 + big), "\n".join(lines), fill=(130, 130, 130), font=font(small), anchor="ma",
        align="center", spacing=2,
    )  # fmt: skip
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
        "references": list(run.request.references),
    }


def png_info(meta: dict[str, Any]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("seqnb", json.dumps(meta, ensure_ascii=False, default=str))
    if meta.get("prompt") is not None:  # the A1111 convention, read by many image tools
        info.add_itxt(
            "parameters",
            f"{meta['prompt']}\nSeed: {meta.get('seed')}, Size: {meta.get('size')}, Model: {meta.get('model')}, "
            f"Frame: {meta.get('frame')}, Request: {meta.get('request_id')}"
            + (f", References: {' '.join(meta['references'])}" if meta.get("references") else ""),
        )
    return info


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    """Image bytes as a ``data:`` URI, for a page that must hold its images."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def differing_labels(runs: Sequence[RunCore]) -> list[str]:
    """The runs' labels, kept since they were made (``seqnb.model.labels``); where two runs shown together share one,
    or one has none (a row written before labels), what tells them apart among the runs shown. Where the runs shown
    span several models or seeds, each label names its model and seed (runs of different sweeps side by side)."""
    own = [r.label for r in runs]
    if not (all(own) and len(set(own)) == len(own)):
        return labels([r.request for r in runs])
    models = {r.request.model.id for r in runs}
    seeds = {repr(r.request.resolved().get("seed")) for r in runs}
    return [
        named_with(
            label,
            show_value("model", run.request.model.id) if len(models) > 1 else "",
            show_value("seed", run.request.resolved().get("seed")) if len(seeds) > 1 else "",
        )
        for run, label in zip(runs, own, strict=True)
    ]


_RATIO = re.compile(r"\((\d+:\d+)\)")
"""The ratio a size names, ``2560x1440 (16:9)`` -> ``16:9``: a label that says it says the size."""


def row_caption(
    run: RunCore,
    label: str,
    score: float | None,
    sep: str = "  ",
    *,
    score_name: str = BUILTIN,
    marks: RunMarks | None = None,
) -> str:
    """A series' row caption: what differs, its size, whether it came back short, its rating and verdict, its score.

    Give ``score`` only where it separates the series shown (``scoring.separating``).
    """
    bits = [label]
    size_name = run.request.resolved().get("size")
    ratio = _RATIO.search(str(size_name or ""))
    if size_name and not says(label, str(size_name)) and not (ratio and says(label, ratio.group(1))):
        bits.append(str(size_name))
    if run.short:
        bits.append(f"{len(run.images)} of {run.requested} returned")
    if marks is not None and marks.rating:
        bits.append(f"★{marks.rating}")
    if marks is not None and marks.verdict:
        bits.append(marks.verdict)
    if score is not None:
        bits.append(f"{score_name} {score:.2f}")
    return sep.join(bits)


def tile(cache: ImageStore, frame: Frame, size: int, height: int | None = None) -> Image.Image:
    """A frame's thumbnail, or a grey placeholder (``height`` high, else square) saying why there is none.

    A thumbnail the cache cannot store (disk full, read-only) is made in memory; an original that
    vanished (evicted by another process since) gives a placeholder, never an exception.
    """
    if frame.image is None:
        return placeholder(size, frame_label(frame), frame.reason, height)
    try:
        try:
            with Image.open(cache.thumbnail(frame.image, size)) as thumb:
                return thumb.convert("RGB")
        except OSError as exc:
            if not frame.image.path.exists():
                raise
            log.warning("thumbnail of %s not cached (%s); made in memory", frame.image.path, exc)
            with Image.open(io.BytesIO(cache.render_thumbnail(frame.image, size))) as thumb:
                return thumb.convert("RGB")
    except FileNotFoundError:
        return placeholder(
            size, LABELS["evicted"], "evicted from the image cache; show the run again to refetch it", height
        )
    except Exception as exc:  # an unreadable file must not cost the other tiles
        return placeholder(size, LABELS["error"], f"{type(exc).__name__}: {exc}", height)


def sheet(
    cache: ImageStore,
    rows: Sequence[tuple[RunCore, Sequence[Frame], float | None]],
    size: int,
    score_name: str = BUILTIN,
    marks: Mapping[str, RunMarks] | None = None,
) -> Image.Image:
    """A contact sheet: one row per run (its frames, score and marks), columns aligned by frame index, labelled."""
    cores = [run for run, _, _ in rows]
    shown = separating([score for _, _, score in rows])
    marks = marks or {}
    columns = max((r.requested for r in cores), default=1)
    label_h = max(16, size // 9)
    caption_h = max(14, size // 11)
    pad = max(4, size // 32)
    tiles = [row_tiles(cache, frames, size) for _, frames, _ in rows]
    heights = [max((p.height for p in pictures), default=size) for pictures in tiles]
    width = pad + columns * (size + pad)
    out = Image.new("RGB", (width, pad + sum(label_h + h + caption_h + pad for h in heights)), "white")
    draw = ImageDraw.Draw(out)
    label_font, caption_font = font(max(11, label_h - 4)), font(max(10, caption_h - 3))
    y = pad
    for (run, frames, score), label, pictures, high in zip(rows, differing_labels(cores), tiles, heights, strict=True):
        caption = row_caption(run, label, score if shown else None, score_name=score_name, marks=marks.get(run.id))
        draw.text((pad, y), caption, fill=(20, 20, 20), font=label_font)
        for frame, picture in zip(frames, pictures, strict=True):
            x = pad + frame.index * (size + pad)
            out.paste(picture, (x + (size - picture.width) // 2, y + label_h + (high - picture.height) // 2))
            caption = f"{frame.index + 1}/{frame.count}" + ("" if frame.image else f" {frame_label(frame)}")
            draw.text((x, y + label_h + high + 1), caption, fill=(90, 90, 90), font=caption_font)
        y += label_h + high + caption_h + pad
    return out


def row_tiles(cache: ImageStore, frames: Sequence[Frame], size: int) -> list[Image.Image]:
    """A row's tiles, as high as its tallest picture (a 16:9 row is not padded to a square), placeholders too."""
    pictures = [tile(cache, frame, size) for frame in frames]
    high = max((p.height for p in pictures if not p.info.get("placeholder")), default=size)
    return [
        tile(cache, frame, size, high) if p.info.get("placeholder") and p.height != high else p
        for frame, p in zip(frames, pictures, strict=True)
    ]
