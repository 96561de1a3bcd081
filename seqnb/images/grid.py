"""Series as widgets: a grid of thumbnails per run, labelled by what differs, click to enlarge.

ipywidgets loads with this module, which the gallery imports only when a grid is asked for.
"""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..runs.run import RunCore
from .gallery import cores_of
from .render import Frame, differing_labels, row_caption, tile
from .scoring import separating

if TYPE_CHECKING:
    from .gallery import Gallery

__all__ = ["grid"]


def grid(gallery: Gallery, runs: Any, size: int | None = None, enlarge: int = 1024) -> w.VBox:
    """An ipywidgets grid: one row per run (label above, frames in order, aligned by index); click to enlarge.

    Each label shows the run's rating and verdict, and its score only where the scores separate the rows.

    Returns ``VBox([rows, caption, viewer])``; each row is ``VBox([label, HBox(cells)])``.
    """
    cores = cores_of(runs)
    size = size or gallery.thumb
    viewer = w.Image(format="jpeg", layout=w.Layout(max_width=f"{enlarge}px", display="none"))
    viewer_caption = w.HTML()
    rows: list[w.Widget] = []
    framed = [(run, gallery.frames(run)) for run in cores]
    shown = separating([gallery.score(run) for run in cores])  # a score all series share tells nothing
    marks = gallery.marks_of(cores)
    for (run, frames), label in zip(framed, differing_labels(cores), strict=True):
        score = gallery.score(run) if shown else None
        caption = row_caption(run, label, score, " · ", score_name=gallery.score_name, marks=marks.get(run.id))
        header = w.HTML(f"<b>{html.escape(caption)}</b>")
        rated = marks[run.id].frame_ratings if run.id in marks else {}
        cells = [_cell(gallery, run, frame, size, viewer, viewer_caption, enlarge, rated) for frame in frames]
        rows.append(w.VBox([header, w.HBox(cells, layout=w.Layout(grid_gap="4px"))]))
    return w.VBox([w.VBox(rows), viewer_caption, viewer])


def _cell(
    gallery: Gallery,
    run: RunCore,
    frame: Frame,
    size: int,
    viewer: Any,
    caption: Any,
    enlarge: int,
    rated: dict[int, int],
) -> Any:
    picture = tile(gallery.cache, frame, size)
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=85)
    image = w.Image(value=buf.getvalue(), format="jpeg", layout=w.Layout(width=f"{picture.width}px"))
    seed = run.request.resolved().get("seed")
    text = f"{frame.index + 1}/{frame.count} · seed {seed}" + (
        f" · ★{rated[frame.index]}" if frame.index in rated else ""
    )
    button = w.Button(
        description=text, tooltip="enlarge" if frame.image else frame.state,
        disabled=frame.image is None, layout=w.Layout(width=f"{size}px"),
    )  # fmt: skip

    def show(_: Any = None) -> None:
        if frame.image is None:
            return
        viewer.value = gallery.cache.thumbnail(frame.image, enlarge).read_bytes()
        viewer.layout.display = ""
        caption.value = f"<b>{html.escape(text)}</b> · {frame.image.width}x{frame.image.height} · run {run.id}"

    button.on_click(show)
    cell = w.VBox([image, button], layout=w.Layout(width=f"{size + 8}px", align_items="center"))
    cell.show = show  # the click action, callable from tests and scripts
    return cell
