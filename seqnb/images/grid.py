"""Series as widgets: a grid of thumbnails per run, labelled by what differs, click to enlarge.

A reference series starts with small thumbnails of its references; each frame then says its
similarity to them, and the one that drifts most says so.

ipywidgets loads with this module, which the gallery imports only when a grid is asked for. A grid's
output carries, besides its widget view, the same thumbnails as static HTML (``seqnb.images.fallback``),
so a saved notebook shows them wherever it is opened.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..runs.run import RunCore
from .fallback import Cell, HtmlBudget, SeriesRow, StaticFallback, series_html, series_rows
from .gallery import cores_of
from .render import Frame, tile

if TYPE_CHECKING:
    from .gallery import Gallery

__all__ = ["SeriesGrid", "grid"]


class SeriesGrid(StaticFallback, w.VBox):
    """The grid's box: its output also carries the thumbnails and labels as HTML, for saved notebooks."""

    def __init__(self, children: list[w.Widget], rows: list[SeriesRow]) -> None:
        self.rows = rows
        super().__init__(children)

    def static_html(self, budget: HtmlBudget | None = None) -> str:
        return series_html(self.rows, budget)

    def static_text(self) -> str:
        frames = sum(len(r.cells) for r in self.rows)
        return f"<seqnb grid: {len(self.rows)} run(s), {frames} frame(s)>"


def grid(gallery: Gallery, runs: Any, size: int | None = None, enlarge: int = 1024) -> SeriesGrid:
    """An ipywidgets grid: one row per run (label above, frames in order, aligned by index); click to enlarge.

    Each label shows the run's rating and verdict, and its score only where the scores separate the rows.

    Returns ``SeriesGrid([rows, caption, viewer])`` (a ``VBox``); each row is ``VBox([label, HBox(cells)])``.
    """
    cores = cores_of(runs)
    size = size or gallery.thumb
    viewer = w.Image(format="jpeg", layout=w.Layout(max_width=f"{enlarge}px", display="none"))
    viewer_caption = w.HTML()
    statics = series_rows(gallery, cores, size)
    rows: list[w.Widget] = []
    for run, row in zip(cores, statics, strict=True):
        header = w.HTML(f'<b title="{html.escape(run.request.prompt or "")}">{html.escape(row.caption)}</b>')
        cells: list[Any] = [_reference_cell(gallery, ref, size // 2) for ref in gallery.references(run)]
        for frame, cell in zip(gallery.frames(run), row.cells, strict=True):
            cells.append(_cell(gallery, run, frame, cell, size, viewer, viewer_caption, enlarge))
        rows.append(w.VBox([header, w.HBox(cells, layout=w.Layout(grid_gap="4px"))]))
    return SeriesGrid([w.VBox(rows), viewer_caption, viewer], statics)


def _image(cell: Cell) -> w.Image:
    return w.Image(value=cell.jpeg, format="jpeg", layout=w.Layout(width=f"{cell.width}px"))


def _reference_cell(gallery: Gallery, ref: Frame, size: int) -> w.VBox:
    """A small thumbnail of one reference image, before the frames of its series."""
    label = w.HTML(f"<small>ref {ref.index + 1}</small>")
    image = _image(Cell.of(tile(gallery.cache, ref, size), ""))
    cell = w.VBox([image, label], layout=w.Layout(width=f"{size + 8}px", align_items="center"))
    cell.add_class("seqnb-reference")
    return cell


def _cell(
    gallery: Gallery, run: RunCore, frame: Frame, cell: Cell, size: int, viewer: Any, caption: Any, enlarge: int
) -> w.VBox:
    button = w.Button(
        description=cell.text, tooltip="enlarge" if frame.image else frame.state,
        disabled=frame.image is None, layout=w.Layout(width=f"{size}px"),
    )  # fmt: skip

    def show(_: Any = None) -> None:
        if frame.image is None:
            return
        viewer.value = gallery.cache.thumbnail(frame.image, enlarge).read_bytes()
        viewer.layout.display = ""
        caption.value = (
            f"<b>{html.escape(cell.text)}</b> · {frame.image.width}x{frame.image.height} · run {html.escape(run.id)}"
        )

    button.on_click(show)
    box = w.VBox([_image(cell), button], layout=w.Layout(width=f"{size + 8}px", align_items="center"))
    box.show = show  # the click action, callable from tests and scripts
    return box
