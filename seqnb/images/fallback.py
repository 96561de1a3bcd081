"""Static views for saved notebooks: HTML with the thumbnails embedded as ``data:`` URIs, bounded in size.

A widget's output keeps only its view id and a repr, so GitHub, nbviewer, nbconvert and a
kernel-less JupyterLab show nothing of it. ``StaticFallback`` adds, to a widget's own output
bundle, a ``text/html`` made here: plain tables (no scripts, no styles a sanitizer would strip),
every text escaped, images as ``data:`` URIs (never a path, never a URL), at most
``$SEQNB_STATIC_MAX_BYTES`` (default 2M) per output, with a note saying what was left out.
JupyterLab with a live kernel shows the widget view, which outranks ``text/html``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from .limit import human_size, size_setting
from .matrix import cell_labels, made_from
from .render import Frame, data_uri, differing_labels, row_caption, row_tiles, tile
from .scoring import most_drifting, separating
from .store import jpeg_bytes

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
    "cells_html",
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
    return size_setting(STATIC_MAX_ENV, DEFAULT_STATIC_MAX_BYTES)


@dataclass(frozen=True)
class Cell:
    """One frame as a saved notebook shows it: its JPEG thumbnail (None: not made, the copy being full) and its caption."""

    jpeg: bytes | None
    text: str
    width: int = 0
    height: int = 0

    @classmethod
    def of(cls, picture: Image.Image | None, text: str) -> Cell:
        if picture is None:
            return cls(None, text)
        return cls(jpeg_bytes(picture), text, picture.width, picture.height)


@dataclass(frozen=True)
class SeriesRow:
    """One run as a row of cells under its caption."""

    caption: str
    cells: tuple[Cell, ...]


class HtmlBudget:
    """Bytes of HTML an output may still take; images that do not fit are counted, not embedded."""

    def __init__(self) -> None:
        self.limit = static_max_bytes()
        self.used = 0
        self.left_out = 0

    def text(self, markup: str) -> str:
        self.used += len(markup.encode("utf-8"))
        return markup

    def image(self, jpeg: bytes | None, alt: str, width: int, height: int) -> str | None:
        """An ``<img>`` with the JPEG inline, or None (and one more left out) when it would pass the limit or none
        was made."""
        if jpeg is None:
            self.left_out += 1
            return None
        tag = f'<img src="{data_uri(jpeg)}" width="{width}" height="{height}" alt="{html.escape(alt)}">'
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


def series_rows(gallery: Gallery, runs: Sequence[RunCore], size: int) -> list[SeriesRow]:
    """The runs' rows as the grid shows them (``seqnb.images.grid``): each caption with the run's marks and its score
    where the scores separate the rows; each frame's thumbnail and caption (its place, the seed, its likeness to the
    references, its stars). Frames not downloaded yet are downloaded."""
    framed = [gallery.frames(run) for run in runs]  # first: the scores come with the frames
    shown = separating([gallery.score(run) for run in runs])  # a score all series share tells nothing
    marks = gallery.marks_of(runs)
    rows = []
    for run, frames, label in zip(runs, framed, differing_labels(runs), strict=True):
        score = gallery.score(run) if shown else None
        caption = row_caption(run, label, score, " · ", score_name=gallery.score_name, marks=marks.get(run.id))
        rated = marks[run.id].frame_ratings if run.id in marks else {}
        likeness = gallery.reference_similarity(run)
        drifts = most_drifting(likeness)
        cells = []
        for frame in frames:
            text = f"{frame.index + 1}/{frame.count} · seed {run.request.resolved().get('seed')}"
            likes = likeness[frame.index] if frame.index < len(likeness) else None
            if likes is not None:
                text += f" · ref {likes:.2f}" + (" · drifts most" if frame.index == drifts else "")
            if frame.index in rated:
                text += f" · ★{rated[frame.index]}"
            cells.append(Cell.of(tile(gallery.cache, frame, size), text))
        rows.append(SeriesRow(caption, tuple(cells)))
    return rows


def cells_html(cells: Iterable[Cell], budget: HtmlBudget) -> str:
    """Frames in order as table cells: each thumbnail inline (or a note that it did not fit), its caption under it."""
    parts = []
    for cell in cells:
        img = budget.image(cell.jpeg, cell.text, cell.width, cell.height)
        parts.append(budget.text("<td>") + (img or budget.text("<i>(not embedded)</i>")))
        parts.append(budget.text(f"<br><small>{html.escape(cell.text)}</small></td>"))
    return "".join(parts)


def series_html(rows: Iterable[SeriesRow], budget: HtmlBudget | None = None) -> str:
    """The rows as one HTML table: a caption row, then the frames in order with their captions."""
    budget = budget or HtmlBudget()
    parts = [budget.text("<table>")]
    for row in rows:
        parts.append(
            budget.text(f'<tr><td colspan="{max(1, len(row.cells))}"><b>{html.escape(row.caption)}</b></td></tr><tr>')
        )
        parts.append(cells_html(row.cells, budget) + budget.text("</tr>"))
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
    rated = dict(getattr(view.marks.get(run.id), "frame_ratings", None) or {})
    full = budget.used >= budget.limit  # no image fits any more: none is drawn
    pictures = [None for _ in frames] if full else row_tiles(view.gallery.cache, frames, size)
    cells = [
        Cell.of(
            picture, f"{frame.index + 1}/{frame.count}" + (f" ★{rated[frame.index]}" if frame.index in rated else "")
        )
        for frame, picture in zip(frames, pictures, strict=True)
    ]
    return budget.text("<table><tr>") + cells_html(cells, budget) + budget.text("</tr></table>")


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
    framed = {run.id: view.static_frames(run) for f in range(len(m.facets)) for run in m.reading_order(f)}
    size = _copy_size(view, [frames or [] for frames in framed.values()], budget)
    parts: list[str] = []
    left_out: list[str] = []
    for f, facet in enumerate(m.facets):
        label = html.escape(facet.label) or "the table"
        if budget.used >= budget.limit > 0:
            left_out.append(f"{label} ({len(m.reading_order(f))} series)")
            continue
        if m.facet_axis:
            parts.append(budget.text(f"<p><b>{html.escape(m.facet_axis)}: {label}</b></p>"))
        parts.append(budget.text(f"<table><tr><th>{names}</th>" + "".join(_header(h) for h in m.cols) + "</tr>"))
        for r, row in enumerate(m.rows):
            if budget.used >= budget.limit > 0:  # the rest of this table: named, not drawn
                rest = sum(len(m.cell(i, c, f)) for i in range(r, len(m.rows)) for c in range(len(m.cols)))
                left_out.append(f"rows {r + 1}-{len(m.rows)} of {label} ({rest} series)")
                break
            parts.append(budget.text("<tr>" + _header(row)))
            for c in range(len(m.cols)):
                cell = m.cell(r, c, f)
                parts.append(budget.text('<td valign="top">'))
                for run, differs in zip(cell, cell_labels(cell, placed, m.parents), strict=True):
                    caption = _series_caption(view, run, differs, m.parents.get(run.id))
                    parts.append(budget.text(f"<div>{caption}</div>" if caption else ""))
                    frames = framed.get(run.id)
                    if frames:
                        parts.append(_strip(view, run, frames, size, budget))
                    else:
                        parts.append(budget.text(f"<small>{html.escape(run.status.replace('_', ' '))}</small><br>"))
                parts.append(budget.text("</td>"))
            parts.append(budget.text("</tr>"))
        parts.append(budget.text("</table>"))
    summary = f"{len(m.runs)} series"
    if m.facet_axis:
        summary += f" in {len(m.facets)} table{'s' * (len(m.facets) != 1)} ({html.escape(m.facet_axis)})"
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
