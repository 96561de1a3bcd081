"""What was chosen, written out: each series' full-size frames as PNGs carrying their provenance, and a CSV of the rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PIL import Image

from ..errors import SeqnbError
from .render import Frame, png_info, provenance
from .series import Series

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Exported", "export_series", "frame_name", "frame_provenance", "save_png"]


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the PNGs, the CSV of the rows, and the frames that had no image to write."""

    images: list[Path]
    table: Path
    missing: int


def frame_provenance(series: Series, frame: Frame) -> dict[str, Any]:
    """A frame's provenance: the run's request and ids, and the image's hash, size and source host (never a path)."""
    meta = provenance(series.run, frame.index)
    if frame.image is not None:
        meta.update(
            sha256=frame.image.sha256, width=frame.image.width, height=frame.image.height,
            source_host=urlsplit(frame.image.url).hostname if not frame.image.url.startswith("data:") else "data URI",
        )  # fmt: skip
    else:
        meta.update(state=frame.state, reason=frame.reason)
    return meta


def frame_name(series: Series, frame: Frame) -> str:
    """``<run id>-02of04.png``: sorts by run, then frame."""
    return f"{series.run.id}-{frame.index + 1:02d}of{frame.count:02d}.png"


def save_png(series: Series, frame: Frame, directory: Path) -> Path:
    """Write one frame full-size as PNG with its provenance (``seqnb`` and A1111's ``parameters`` text chunks)."""
    assert frame.image is not None
    target = directory / frame_name(series, frame)
    with Image.open(frame.image.path) as img:
        img.save(target, format="PNG", pnginfo=png_info(frame_provenance(series, frame)))
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
                written.append(save_png(one, frame, out))
            except FileNotFoundError:
                missing += 1  # evicted from the cache since it was listed
    private = [c for c in ("kernel",) if c in rows]  # the notebook's path on the machine that ran it
    return Exported(written, export(rows.drop(columns=private), out / "runs.csv"), missing)
