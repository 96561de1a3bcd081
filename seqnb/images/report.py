"""One self-contained HTML file for a sweep or a selection: opens from ``file://`` with the network off.

The page is data and a script: every run, frame and spend line goes into one JSON block (``<``,
``>`` and ``&`` escaped, so no text can close the block), and ``static/report.js``, shipped inside
the file, draws the matrix (axis choice, swap, a table per facet; each cell's series with its model,
seed, stars and verdict, a promoted run under its original), the sortable table of runs, each series
with its prompt, settings, cost, state, consistency, marks and each frame's provenance, the spend,
and a viewer that shows a frame large and is driven by the keys of the matrix widget's lightbox, with
``textContent`` only: a prompt, note, tag or service answer is never markup. Thumbnails are
``data:`` URIs; the viewer's larger frames too, as large as ``LARGE_MAX_BYTES`` allows for all of
them; ``full="embed"`` inlines the full-size images instead, ``full="beside"`` writes them as
provenance-carrying PNGs in a folder next to the file (linked relatively). A Content-Security-Policy
forbids every fetch. No path outside that folder, no URL of an image and no token go into the file.
That folder (``NAME_files/``, the very name a browser's "save page, complete" uses) is seqnb's only
when seqnb made it (a ``.seqnb-report`` file inside says so): any other is left alone, with a clear error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from ..errors import SeqnbError
from ..model.spec import get_model
from .export import frame_provenance, save_png
from .matrix import build_matrix, choose_axes, family_order, lineage, made_from, varying_axes
from .render import LABELS, Frame, data_uri, frame_label, placeholder
from .series import Series
from .store import jpeg_bytes

__all__ = [
    "DEFAULT_LARGE",
    "DEFAULT_THUMB",
    "FILES_MARK",
    "LARGE_MAX_BYTES",
    "Full",
    "axes_of",
    "report_data",
    "report_html",
    "write_report",
]

DEFAULT_THUMB = 256
"""Longer side of the embedded thumbnails, in pixels (about 10-20 KB each as JPEG)."""

DEFAULT_LARGE = 1024
"""Longer side of the frames the viewer shows large (when the full-size images stay out of the report)."""

LARGE_MAX_BYTES = 6 * 1024 * 1024
"""What the viewer's large frames may add to a report in all: past it they are made smaller, and below twice the
thumbnails' size left out (the viewer then shows the thumbnail, and says so)."""

Full = Literal["none", "embed", "beside"]

FILES_MARK = ".seqnb-report"
"""The file that marks a report's ``NAME_files/`` folder as seqnb's: only such a folder is ever emptied."""
_FRAME_PNG = re.compile(r"[A-Za-z0-9_-]+-\d{2,}of\d{2,}\.png")  # the names export.frame_file makes

ASSETS = Path(__file__).with_name("static")
CSP = "default-src 'none'; img-src data: file: 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
"""The page may run its own inline script and show inline images and those beside it; it may fetch nothing else."""


def axes_of(series: Sequence[Series]) -> dict[str, Any]:
    """The matrix's axes (``seqnb.images.matrix``): those the runs vary on, each value's label and full text, each run's place.

    ``x`` (across), ``y`` (down) and ``facet`` (a table per value) are what the page opens on: prompts across,
    seeds down and a table per model when those vary. A run made from another of the report sits at its place.
    """
    cores = sorted((s.run for s in series), key=lambda r: r.created_at)  # values in the order they were asked for
    parents = lineage(cores)
    varying = varying_axes([r for r in cores if r.id not in parents]) or ["seed"]
    axes, where = [], {}
    for axis in varying:
        laid = build_matrix(cores, rows=axis, cols=None)
        axes.append({"key": axis, "labels": [h.label for h in laid.rows], "titles": [h.title for h in laid.rows]})
        where[axis] = {run.id: row for (_, row, _), runs in laid.cells.items() for run in runs}
    rows, cols, facet = choose_axes(cores, "seed", "prompt", "model")
    x = cols or rows or varying[0]
    y = rows if rows and rows != x else ""
    return {"axes": axes, "at": where, "x": x, "y": y, "facet": facet if facet and facet not in (x, y) else ""}


def _jpeg(picture: Image.Image, quality: int) -> tuple[bytes, int, int]:
    return jpeg_bytes(picture, quality), picture.width, picture.height


def _pictures(
    frames: Sequence[Frame], thumb: int, large: int
) -> list[tuple[tuple[bytes, int, int], tuple[bytes, int, int] | None]]:
    """Each frame's thumbnail and, when ``large``, its larger version, from one decode of its file."""

    def one(frame: Frame) -> tuple[tuple[bytes, int, int], tuple[bytes, int, int] | None]:
        if frame.image is None:
            return _jpeg(placeholder(thumb, frame_label(frame), frame.reason), 80), None
        try:
            picture = frame.image.shrunk(max(thumb, large))
        except Exception as exc:  # an unreadable or vanished file costs only its own frame
            detail = f"{type(exc).__name__}: the cached file cannot be read"
            return _jpeg(placeholder(thumb, LABELS["error"], detail), 80), None
        small = picture.copy()  # the thumbnail is made from the larger one: one reduction of the original
        small.thumbnail((thumb, thumb), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return _jpeg(small, 80), _jpeg(picture, 82) if large > thumb and max(picture.size) > thumb else None

    with ThreadPoolExecutor(max_workers=4) as pool:  # Pillow decodes outside the GIL
        return list(pool.map(one, frames))


def _large_size(frames: Sequence[Frame], thumb: int, large: int, budget: int) -> int:
    """The viewer's frame size: ``large``, or smaller so that all of them fit ``budget``; 0 (none) below twice ``thumb``."""
    pictured = [f for f in frames if f.image is not None]
    if large <= thumb or not pictured:
        return 0
    sample = [p for _, p in _pictures(pictured[:: max(1, len(pictured) // 3)][:3], thumb, large) if p is not None]
    if not sample:
        return 0
    per_frame = max(len(data) for data, _, _ in sample) * 4 / 3  # base64
    if per_frame * len(pictured) <= budget:
        return large
    # a smaller JPEG takes more bytes per pixel than a larger one: its area shrinks a little more than the budget's
    size = int(large * (0.85 * budget / (per_frame * len(pictured))) ** 0.55)
    return size if size >= 2 * thumb else 0


def report_data(
    series: Sequence[Series],
    *,
    title: str,
    spend: Sequence[dict[str, Any]] = (),
    thumb: int = DEFAULT_THUMB,
    full: Full = "none",
    files: Path | None = None,
    large: int = DEFAULT_LARGE,
    large_budget: int = LARGE_MAX_BYTES,
    tables: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (``files``: where ``full="beside"`` writes the full-size PNGs;
    ``large``: the viewer's frames' longer side, within ``large_budget`` bytes for all, when the full size stays out)."""
    parents = lineage([s.run for s in series])
    series = family_order(series, parents, lambda s: s.run.id)
    every = [frame for one in series for frame in one.frames]
    large_size = _large_size(every, thumb, large, large_budget) if full == "none" else 0
    made = iter(_pictures(every, thumb, large_size))
    layout = axes_of(series)
    by_id = {s.run.id: s.run for s in series}
    runs = []
    for one in series:
        run, resolved = one.run, one.run.request.resolved()
        frames = []
        for frame in one.frames:
            (data, width, height), bigger = next(made)
            entry: dict[str, Any] = {
                "index": frame.index, "src": data_uri(data), "width": width, "height": height, "state": frame.state,
                "reason": frame.reason, "provenance": frame_provenance(run, frame),
            }  # fmt: skip
            if bigger is not None:
                entry["large"] = data_uri(bigger[0])
            if frame.image is not None and full == "embed":
                mime = "image/jpeg" if frame.image.format in ("jpeg", "jpg") else f"image/{frame.image.format}"
                with contextlib.suppress(OSError):  # gone from the cache since it was listed: the thumbnail stands in
                    entry["full"] = data_uri(frame.image.path.read_bytes(), mime)
            elif frame.image is not None and full == "beside" and files is not None:
                saved = save_png(run, frame, files)
                if saved is not None:
                    entry["full"] = f"{files.name}/{saved.name}"
            frames.append(entry)
        parent = by_id.get(parents.get(run.id, ""))
        prompt = run.request.model.role("prompt")  # shown on its own, not among the settings
        runs.append(
            {
                "id": run.id, "request_id": run.request_id, "model_id": run.model,
                "model": get_model(run.model).short_name, "prompt": str(run.request.prompt or ""),
                "seed": "" if resolved.get("seed") is None else str(resolved.get("seed")),
                "size": str(resolved.get("size") or ""), "count": str(run.requested),
                "label": run.label, "parent": parent.id if parent else "", "made": made_from(run, parent),
                "at": {axis: at[run.id] for axis, at in layout["at"].items()},
                "settings": {k: v for k, v in run.request.payload().items() if prompt is None or k != prompt.wire},
                "size_name": resolved.get("size"), "consistency": one.score, "frames": frames,
                **{k: v for k, v in one.row.items() if k != "consistency"},
            }
        )  # fmt: skip
    return {
        "title": title,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "axes": layout["axes"],
        "x": layout["x"],
        "y": layout["y"],
        "facet": layout["facet"],
        "large": large_size,
        "full": full,
        "runs": runs,
        "spend": list(spend),
        "tables": list(tables),  # titled tables of plain rows: the ranking and axis effects from duels
    }


def _script_json(data: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` block or open a comment, whatever the strings in it say."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def report_html(data: dict[str, Any]) -> str:
    """The page: the data block, the stylesheet and the script, inline."""
    css = (ASSETS / "report.css").read_text(encoding="utf-8")
    js = (ASSETS / "report.js").read_text(encoding="utf-8")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(str(data['title']))}</title><style>{css}</style></head>\n<body>"
        f"<header><h1>{html.escape(str(data['title']))}</h1></header>"
        '<main id="seqnb-report"><noscript>This report draws itself with the script inside the file; '
        "allow scripts for this page to see it.</noscript></main>\n"
        f'<script type="application/json" id="seqnb-data">{_script_json(data)}</script>\n'
        f"<script>{js}</script>\n</body></html>\n"
    )


def write_report(
    series: Sequence[Series],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    spend: Sequence[dict[str, Any]] = (),
    thumb: int = DEFAULT_THUMB,
    full: Full = "none",
    tables: Sequence[dict[str, Any]] = (),
) -> Path:
    """Write the report of ``series`` to ``path`` (an ``.html`` file) and return it; ``tables``: more titled tables."""
    target = Path(path)
    if full not in ("none", "embed", "beside"):
        raise SeqnbError(
            f"full={full!r}: use 'none', 'embed' (full-size images inside) or 'beside' (a folder next to it)"
        )
    if thumb < 16:
        raise SeqnbError(f"thumb={thumb}: thumbnails need at least 16 pixels (the default is {DEFAULT_THUMB})")
    files = target.with_name(f"{target.stem}_files") if full == "beside" else None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if files is not None:
            _files_folder(files)
        name = title or f"seqnb report: {len(series)} run(s)"
        data = report_data(series, title=name, spend=spend, thumb=thumb, full=full, files=files, tables=tables)
        page = report_html(data)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise SeqnbError(f"cannot write the report {target}: {exc.strerror or exc}; choose a writable path") from exc
    return target


def _files_folder(files: Path) -> None:
    """Make the folder of full-size images beside a report, or empty it of seqnb's PNGs when seqnb made it.

    A folder (or file) of that name that seqnb did not make is never touched: ``SeqnbError`` says so.
    """
    if not files.exists() and not files.is_symlink():
        files.mkdir()
        (files / FILES_MARK).write_text(
            "made by seqnb report; its PNGs are replaced when that report is written again\n"
        )
        return
    if files.is_symlink() or not files.is_dir() or not (files / FILES_MARK).is_file():
        raise SeqnbError(
            f"{files} already exists and seqnb did not make it: it is left alone. Give the report another "
            "name, or move or remove that folder yourself, then write the report again"
        )
    for old in files.iterdir():
        if _FRAME_PNG.fullmatch(old.name) and old.is_file() and not old.is_symlink():
            old.unlink()
