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
from .render import Frame, differing_labels, row_caption, tile

if TYPE_CHECKING:
    from ..runs.run import RunCore
    from .gallery import Gallery
    from .matrix import Header

__all__ = [
    "DEFAULT_STATIC_MAX_BYTES",
    "STATIC_MAX_ENV",
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


def matrix_view_html(view: Any, budget: HtmlBudget | None = None) -> str:
    """A matrix widget's page shown (``seqnb.ui.matrix_view``) as an HTML table: headers, and each cell's series."""
    budget = budget or HtmlBudget()
    m = view.matrix
    page = m.page(view.row_page, view.col_page, rows=view.page_rows, cols=view.page_cols, facet=view.facet_page)
    names = f"{m.rows_axis or ''} ↓ / {m.cols_axis or ''} →"
    parts = [budget.text(f"<p><b>{html.escape(m.facets[page.facet].label)}</b></p>" if m.facet_axis else "")]
    parts.append(budget.text(f"<table><tr><th>{html.escape(names)}</th>"))
    parts += [budget.text(_header(m.cols[c])) for c in page.cols]
    for i, row in enumerate(page.rows):
        parts.append(budget.text("</tr><tr>" + _header(m.rows[row])))
        for cell in page.cells[i]:
            parts.append(budget.text("<td>"))
            for run in cell:
                frames = view.frames.get(run.id)
                if not frames:
                    parts.append(budget.text(f"<small>{html.escape(run.status.replace('_', ' '))}</small><br>"))
                    continue
                for frame in frames:
                    picture = tile(view.gallery.cache, frame, view.thumb)
                    alt = f"{frame.index + 1}/{frame.count}"
                    img = budget.image(jpeg_bytes(picture), alt, picture.width, picture.height)
                    parts.append(img or budget.text(f"<i>{alt} (not embedded)</i> "))
                parts.append(budget.text("<br>"))
            parts.append(budget.text("</td>"))
    more = f"page {page.row_page + 1}/{page.row_pages} of rows, {page.col_page + 1}/{page.col_pages} of columns"
    parts.append(budget.text(f"</tr></table><p><small>{len(m.runs)} run(s) · {html.escape(more)}</small></p>"))
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
