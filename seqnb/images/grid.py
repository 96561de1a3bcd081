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
from .fallback import Cell, HtmlBudget, SeriesRow, StaticFallback, cell_text, jpeg_bytes, series_html
from .gallery import cores_of
from .render import Frame, differing_labels, row_caption, tile
from .scoring import most_drifting, separating

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
    rows: list[w.Widget] = []
    statics: list[SeriesRow] = []
    framed = [(run, gallery.frames(run)) for run in cores]
    shown = separating([gallery.score(run) for run in cores])  # a score all series share tells nothing
    marks = gallery.marks_of(cores)
    for (run, frames), label in zip(framed, differing_labels(cores), strict=True):
        score = gallery.score(run) if shown else None
        caption = row_caption(run, label, score, " · ", score_name=gallery.score_name, marks=marks.get(run.id))
        header = w.HTML(f'<b title="{html.escape(run.request.prompt or "")}">{html.escape(caption)}</b>')
        rated = marks[run.id].frame_ratings if run.id in marks else {}
        likeness = gallery.reference_similarity(run)
        drifts = most_drifting(likeness)
        cells: list[Any] = [_reference_cell(gallery, ref, size // 2) for ref in gallery.references(run)]
        made = []
        for frame in frames:
            likes = likeness[frame.index] if frame.index < len(likeness) else None
            note = "" if likes is None else f" · ref {likes:.2f}" + (" · drifts most" if frame.index == drifts else "")
            if frame.index in rated:
                note += f" · ★{rated[frame.index]}"
            made.append(_cell(gallery, run, frame, size, viewer, viewer_caption, enlarge, note))
        cells += [c for c, _ in made]
        rows.append(w.VBox([header, w.HBox(cells, layout=w.Layout(grid_gap="4px"))]))
        statics.append(SeriesRow(caption, tuple(s for _, s in made)))
    return SeriesGrid([w.VBox(rows), viewer_caption, viewer], statics)


def _jpeg(gallery: Gallery, frame: Frame, size: int) -> tuple[w.Image, bytes, Any]:
    picture = tile(gallery.cache, frame, size)
    data = jpeg_bytes(picture)
    return w.Image(value=data, format="jpeg", layout=w.Layout(width=f"{picture.width}px")), data, picture


def _reference_cell(gallery: Gallery, ref: Frame, size: int) -> w.VBox:
    """A small thumbnail of one reference image, before the frames of its series."""
    label = w.HTML(f"<small>ref {ref.index + 1}</small>")
    image = _jpeg(gallery, ref, size)[0]
    cell = w.VBox([image, label], layout=w.Layout(width=f"{size + 8}px", align_items="center"))
    cell.add_class("seqnb-reference")
    return cell


def _cell(
    gallery: Gallery, run: RunCore, frame: Frame, size: int, viewer: Any, caption: Any, enlarge: int, note: str = ""
) -> tuple[Any, Cell]:
    image, data, picture = _jpeg(gallery, frame, size)
    text = cell_text(run, frame) + note
    button = w.Button(
        description=text, tooltip="enlarge" if frame.image else frame.state,
        disabled=frame.image is None, layout=w.Layout(width=f"{size}px"),
    )  # fmt: skip

    def show(_: Any = None) -> None:
        if frame.image is None:
            return
        viewer.value = gallery.cache.thumbnail(frame.image, enlarge).read_bytes()
        viewer.layout.display = ""
        caption.value = (
            f"<b>{html.escape(text)}</b> · {frame.image.width}x{frame.image.height} · run {html.escape(run.id)}"
        )

    button.on_click(show)
    cell = w.VBox([image, button], layout=w.Layout(width=f"{size + 8}px", align_items="center"))
    cell.show = show  # the click action, callable from tests and scripts
    return cell, Cell(data, text, picture.width, picture.height)
