"""Static views for saved notebooks: HTML with the thumbnails embedded as ``data:`` URIs, bounded in size.

A widget's output keeps only its view id and a repr, so GitHub, nbviewer, nbconvert and a
kernel-less JupyterLab show nothing of it. ``StaticFallback`` adds, to a widget's own output
bundle, a ``text/html`` made here: plain tables (no scripts, no styles a sanitizer would strip),
every text escaped, images as ``data:`` URIs (never a path, never a URL), at most
``$SEQNB_STATIC_MAX_BYTES`` (default 2M) per output, with a note saying what was left out.
JupyterLab with a live kernel shows the widget view, which outranks ``text/html``.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SettingInvalid
from .limit import human_size, parse_size
from .matrix import cell_labels, made_from
from .render import Frame, differing_labels, row_caption, tile

if TYPE_CHECKING:
    from ..runs.run import RunCore
    from .gallery import Gallery
    from .matrix import Header

__all__ = [
    "DEFAULT_STATIC_MAX_BYTES",
    "STATIC_MAX_ENV",
    "VERDICTS",
    "Cell",
    "HtmlBudget",
    "SeriesRow",
    "StaticFallback",
    "cell_text",
    "jpeg_bytes",
    "matrix_view_html",
    "series_html",
    "series_rows",
    "static_max_bytes",
]

log = logging.getLogger(__name__)

STATIC_MAX_ENV = "SEQNB_STATIC_MAX_BYTES"
DEFAULT_STATIC_MAX_BYTES = 2 * 1024 * 1024


def static_max_bytes() -> int:
    """``$SEQNB_STATIC_MAX_BYTES`` when set (e.g. ``500K``, ``4M``; ``0`` embeds no image), else 2 MiB."""
    text = os.environ.get(STATIC_MAX_ENV, "").strip()
    if not text:
        return DEFAULT_STATIC_MAX_BYTES
    try:
        return parse_size(text, f"${STATIC_MAX_ENV}")
    except ValueError as exc:
        raise SettingInvalid(str(exc)) from None


@dataclass(frozen=True)
class Cell:
    """One frame as a saved notebook shows it: its JPEG thumbnail (or none) and its caption."""

    jpeg: bytes | None
    text: str
    width: int
    height: int


@dataclass(frozen=True)
class SeriesRow:
    """One run as a row of cells under its caption."""

    caption: str
    cells: tuple[Cell, ...]


class HtmlBudget:
    """Bytes of HTML an output may still take; images that do not fit are counted, not embedded."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = static_max_bytes() if limit is None else limit
        self.used = 0
        self.left_out = 0

    def text(self, markup: str) -> str:
        self.used += len(markup.encode("utf-8"))
        return markup

    def image(self, data: bytes, alt: str, width: int, height: int, mime: str = "image/jpeg") -> str | None:
        """An ``<img>`` with the bytes inline, or None (and one more left out) when it would pass the limit."""
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        tag = f'<img src="{uri}" width="{width}" height="{height}" alt="{html.escape(alt)}">'
        if self.used + len(tag) > self.limit:
            self.left_out += 1
            return None
        return self.text(tag)

    def note(self) -> str:
        """A line saying how many images were left out and how to raise the limit ('' when none was)."""
        if not self.left_out:
            return ""
        return (
            f"<p><i>{self.left_out} image(s) not embedded: this output is capped at {human_size(self.limit)} "
            f"(set ${STATIC_MAX_ENV}, e.g. 8M, before displaying it again)</i></p>"
        )


def jpeg_bytes(picture: Any, quality: int = 85) -> bytes:
    """A Pillow image as JPEG bytes."""
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def cell_text(run: RunCore, frame: Frame) -> str:
    """A frame's caption: its place in the series and the run's seed."""
    return f"{frame.index + 1}/{frame.count} · seed {run.request.resolved().get('seed')}"


def series_rows(gallery: Gallery, runs: Sequence[RunCore], size: int) -> list[SeriesRow]:
    """The runs' rows from the frames the gallery already has (never downloading: a run not in yet is left out)."""
    ready = [run for run in runs if gallery.ready(run)]
    rows = []
    for run, label in zip(ready, differing_labels(ready), strict=True):
        cells = []
        for frame in gallery.frames(run):
            picture = tile(gallery.cache, frame, size)
            cells.append(Cell(jpeg_bytes(picture), cell_text(run, frame), picture.width, picture.height))
        rows.append(SeriesRow(row_caption(run, label, gallery.score(run), " · "), tuple(cells)))
    return rows


def series_html(rows: Iterable[SeriesRow], budget: HtmlBudget | None = None) -> str:
    """The rows as one HTML table: a caption row, then the frames in order with their captions."""
    budget = budget or HtmlBudget()
    parts = [budget.text("<table>")]
    for row in rows:
        parts.append(
            budget.text(f'<tr><td colspan="{max(1, len(row.cells))}"><b>{html.escape(row.caption)}</b></td></tr><tr>')
        )
        for cell in row.cells:
            img = budget.image(cell.jpeg, cell.text, cell.width, cell.height) if cell.jpeg else None
            shown = img or budget.text(f"<i>{'(not embedded)' if cell.jpeg else '(no image)'}</i>")
            parts.append(budget.text("<td>") + shown + budget.text(f"<br><small>{html.escape(cell.text)}</small></td>"))
        parts.append(budget.text("</tr>"))
    parts.append(budget.text("</table>"))
    return "".join(parts)


def _header(header: Header, tag: str = "th") -> str:
    return f'<{tag} title="{html.escape(header.title)}">{html.escape(header.label)}</{tag}>'


VERDICTS = {
    "picked": '<span style="color:#2e7d32"><b>✔ picked</b></span>',
    "rejected": '<span style="color:#c62828"><b>✘ rejected</b></span>',
}
"""A verdict as a saved copy shows it: a sign and a word that tell picked from rejected even where colours are stripped."""


def _stars(n: int) -> str:
    return "★" * n + "☆" * (5 - n) if n > 0 else ""


def _series_caption(view: Any, run: RunCore, label: str, parent: str | None) -> str:
    """A series' line in the copy: how it was made (promoted from...), its label, its stars, its verdict, its state."""
    marks = view.marks.get(run.id)
    rating = int(getattr(marks, "rating", 0) or 0)
    verdict = str(getattr(marks, "verdict", "") or "")
    bits = []
    if parent is not None:
        made = "↻ rerun" if made_from(run, view.matrix.find(parent)) == "rerun" else "⤴ promoted"
        bits.append(f'<span style="color:#7e57c2"><b>{made}</b></span> from {html.escape(parent)}')
    if label:
        bits.append(f'<span title="{html.escape(run.label)}">{html.escape(label)}</span>')
    if rating:
        bits.append(f'<span style="color:#f9a825" title="series rated {rating} of 5">{_stars(rating)}</span>')
    if verdict in VERDICTS:
        bits.append(VERDICTS[verdict])
    if run.status != "completed":
        bits.append(f"<i>{html.escape(run.status.replace('_', ' '))}</i>")
    return " · ".join(bits)


def _strip(view: Any, run: RunCore, frames: Sequence[Frame], size: int, budget: HtmlBudget) -> str:
    """A series as one table row of frames, in order: it never wraps, however narrow the page."""
    marks = view.marks.get(run.id)
    rated = dict(getattr(marks, "frame_ratings", None) or {})
    full = budget.used >= budget.limit  # no image fits any more: none is drawn
    pictures = [None if full else tile(view.gallery.cache, frame, size) for frame in frames]
    high = max((p.height for p in pictures if p is not None and not p.info.get("placeholder")), default=size)
    parts = [budget.text("<table><tr>")]
    for frame, picture in zip(frames, pictures, strict=True):
        if picture is not None and picture.info.get("placeholder") and picture.height != high:
            picture = tile(view.gallery.cache, frame, size, high)
        alt = f"{frame.index + 1}/{frame.count}"
        img = budget.image(jpeg_bytes(picture), alt, picture.width, picture.height) if picture is not None else None
        if picture is None:
            budget.left_out += 1
        stars = f" ★{rated[frame.index]}" if frame.index in rated else ""
        parts.append(budget.text("<td>") + (img or budget.text(f"<i>{alt} (not embedded)</i>")))
        parts.append(budget.text(f"<br><small>{alt}{stars}</small></td>"))
    parts.append(budget.text("</tr></table>"))
    return "".join(parts)


def _copy_size(view: Any, framed: Sequence[Sequence[Frame]], budget: HtmlBudget) -> int:
    """The thumbnails' size for the copy: the view's, or smaller so that every frame of every table fits the cap
    (an image's bytes measured on the first one, and taken to shrink with its area)."""
    size = int(view.thumb)
    pictured = [f for frames in framed for f in frames if f.image is not None]
    if not pictured or budget.limit <= 0:
        return size
    firsts = [next(f for f in frames if f.image is not None) for frames in framed if any(f.image for f in frames)]
    sample = max(len(jpeg_bytes(tile(view.gallery.cache, f, size))) for f in firsts[:: max(1, len(firsts) // 4)][:4])
    per_image = sample * 4 / 3 + 60  # base64, and its tag
    markup = 400 * len(framed) + 120 * len(pictured)  # captions, strips' tables, frame numbers
    share = (budget.limit - budget.used - markup) * 0.95 / len(pictured)
    if per_image <= share:
        return size
    return max(32, int(size * (max(share, 0) / per_image) ** 0.5))


def matrix_view_html(view: Any, budget: HtmlBudget | None = None) -> str:
    """A matrix widget (``seqnb.ui.matrix_view``) as a saved notebook shows it: every table (facet) whole, each series a
    strip of frames in order with its stars and verdict, each promoted run under its original; what does not fit the
    size cap (``$SEQNB_STATIC_MAX_BYTES``) is said: which tables were left out, and why."""
    budget = budget or HtmlBudget()
    m = view.matrix
    placed = (m.rows_axis, m.cols_axis, m.facet_axis)
    names = html.escape(f"{m.rows_axis or ''} ↓ / {m.cols_axis or ''} →")
    tables = []
    for f in range(len(m.facets)):
        cells = {(r, c): m.cell(r, c, f) for r in range(len(m.rows)) for c in range(len(m.cols))}
        tables.append((f, cells, {run.id: view.static_frames(run) for cell in cells.values() for run in cell}))
    size = _copy_size(view, [frames or [] for _, _, framed in tables for frames in framed.values()], budget)
    parts: list[str] = []
    left_out: list[str] = []
    for f, cells, framed in tables:
        label = html.escape(m.facets[f].label) or "the table"
        if budget.used >= budget.limit > 0:
            left_out.append(f"{label} ({sum(len(cell) for cell in cells.values())} series)")
            continue
        if m.facet_axis:
            parts.append(budget.text(f"<p><b>{html.escape(m.facet_axis)}: {label}</b></p>"))
        parts.append(budget.text(f"<table><tr><th>{names}</th>" + "".join(_header(h) for h in m.cols) + "</tr>"))
        for r, row in enumerate(m.rows):
            if budget.used >= budget.limit > 0:  # the rest of this table: named, not drawn
                rest = sum(len(cells[(i, c)]) for i in range(r, len(m.rows)) for c in range(len(m.cols)))
                left_out.append(f"rows {r + 1}-{len(m.rows)} of {label} ({rest} series)")
                break
            parts.append(budget.text("<tr>" + _header(row)))
            for c in range(len(m.cols)):
                cell = cells[(r, c)]
                parts.append(budget.text('<td valign="top">'))
                for run, label in zip(cell, cell_labels(cell, placed, m.parents), strict=True):
                    caption = _series_caption(view, run, label, m.parents.get(run.id))
                    parts.append(budget.text(f"<div>{caption}</div>" if caption else ""))
                    frames = framed.get(run.id)
                    if frames:
                        parts.append(_strip(view, run, frames, size, budget))
                    else:
                        parts.append(budget.text(f"<small>{html.escape(run.status.replace('_', ' '))}</small><br>"))
                parts.append(budget.text("</td>"))
            parts.append(budget.text("</tr>"))
        parts.append(budget.text("</table>"))
    tables_word = (
        f"{len(m.facets)} table{'s' * (len(m.facets) != 1)} ({html.escape(m.facet_axis)})" if m.facet_axis else ""
    )
    summary = f"{len(m.runs)} series" + (f" in {tables_word}" if tables_word else "")
    if left_out:
        summary += (
            f"; left out to keep this copy under {human_size(budget.limit)}: {', '.join(left_out)}"
            f" (set ${STATIC_MAX_ENV}, e.g. 8M, before displaying it again)"
        )
    elif m.facet_axis:
        summary += f", all {len(m.facets)} shown"
    parts.append(budget.text(f"<p><small>{summary}</small></p>"))
    return "".join(parts)


class StaticFallback:
    """Mixin for an ipywidget: its output carries ``static_html()`` as ``text/html`` (and ``static_text()``) too."""

    def static_html(self, budget: HtmlBudget | None = None) -> str:
        raise NotImplementedError

    def static_text(self) -> str | None:
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget's own bundle (a dict, or anywidget's (data, metadata)) with ``text/html`` added to its data."""
        view = super()._repr_mimebundle_  # type: ignore[misc]  # the widget's, after this mixin in the MRO
        bundle = view(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if not data:  # a closed widget shows nothing
            return bundle
        try:
            budget = HtmlBudget()
            body = self.static_html(budget)
            data["text/html"] = body + budget.note()
            text = self.static_text()
            if text:
                data["text/plain"] = text
        except Exception as exc:  # a saved view is a courtesy: the live widget must still show
            log.warning("no static view of %s: %s: %s", type(self).__name__, type(exc).__name__, exc)
        return bundle
