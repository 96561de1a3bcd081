"""What was chosen, written out: each series' full-size frames as PNGs carrying their provenance, and a CSV of the rows.

A run id comes from a ledger anyone on a team may write: it is never used raw in a file name
(``file_stem``), and every file is checked to land inside the folder asked for (``inside``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PIL import Image

from ..errors import SeqnbError
from ..runs.run import RunCore
from .render import Frame, png_info, provenance
from .series import Series

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Exported", "export_series", "file_stem", "frame_file", "frame_provenance", "inside", "save_png"]

log = logging.getLogger(__name__)

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the PNGs, the CSV of the rows, and the frames that had no image to write."""

    images: list[Path]
    table: Path
    missing: int


def frame_provenance(run: RunCore, frame: Frame) -> dict[str, Any]:
    """A frame's provenance: the run's request and ids, and the image's hash, size and source host (never a path)."""
    meta = provenance(run, frame.index)
    if frame.image is not None:
        meta.update(
            sha256=frame.image.sha256, width=frame.image.width, height=frame.image.height,
            source_host=urlsplit(frame.image.url).hostname if not frame.image.url.startswith("data:") else "data URI",
        )  # fmt: skip
    else:
        meta.update(state=frame.state, reason=frame.reason)
    return meta


def file_stem(run_id: str) -> str:
    """A run id as the stem of a file name: the id itself when it is plain (``[A-Za-z0-9_-]``, at most 64),
    else ``run-`` and a hash of it (an id like ``../../tmp/x`` names no path)."""
    if _PLAIN.fullmatch(run_id):
        return run_id
    return "run-" + hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def frame_file(run_id: str, index: int, count: int) -> str:
    """``<run id>-02of04.png`` (the id as ``file_stem`` makes it safe): sorts by run, then frame."""
    return f"{file_stem(run_id)}-{index + 1:02d}of{count:02d}.png"


def inside(directory: Path, name: str) -> Path:
    """``directory / name``, refused (``SeqnbError``) unless it lands right inside ``directory``."""
    target = directory / name
    if target.resolve().parent != directory.resolve():
        raise SeqnbError(f"refused to write {name!r}: it would land outside {directory}")
    return target


def save_png(run: RunCore, frame: Frame, directory: Path) -> Path | None:
    """Write one frame full-size as PNG with its provenance (``seqnb`` and A1111's ``parameters`` text chunks).

    None when the cached image cannot be read (gone since it was listed, or no image): that frame
    only is missing. A failure to write raises ``OSError``.
    """
    assert frame.image is not None
    target = inside(directory, frame_file(run.id, frame.index, frame.count))
    try:
        source = Image.open(frame.image.path)
        source.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # gone, unreadable, not an image
        log.warning("frame %d of run %r not read: %s: %s", frame.index + 1, run.id, type(exc).__name__, exc)
        return None
    with source:
        source.save(target, format="PNG", pnginfo=png_info(frame_provenance(run, frame)))
    return target


def export_series(series: Sequence[Series], directory: str | os.PathLike[str], rows: pd.DataFrame) -> Exported:
    """Write the series' frames into ``directory`` as provenance-carrying PNGs, and ``runs.csv`` of their rows."""
    from ..ledger.frames import export

    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqnbError(f"cannot write into {out}: {exc.strerror or exc}; choose a writable folder") from exc
    written, missing = [], 0
    for one in series:
        for frame in one.frames:
            if frame.image is None:
                missing += 1
                continue
            try:
                saved = save_png(one.run, frame, out)
            except OSError as exc:
                raise SeqnbError(
                    f"cannot write into {out}: {exc.strerror or exc}; free some space or choose another folder"
                ) from exc
            if saved is None:
                missing += 1
            else:
                written.append(saved)
    private = [c for c in ("kernel",) if c in rows]  # the notebook's path on the machine that ran it
    return Exported(written, export(rows.drop(columns=private), out / "runs.csv"), missing)
