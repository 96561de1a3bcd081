"""Local reference images in the request panel: an upload button whose files become inline references, shown as
thumbnails that can be removed.

Each file is made an inline PNG by the client's reference gate, as ``client.plan(references=[...])`` makes a local
image: the same caps and messages, the PNG kept in the image cache under its hash, and only its stand-in
(``data:image/png;sha256=...``) kept here. The upload's bytes are dropped from the widget once handed over, so
neither the browser's copy of its state nor a saved notebook carries them.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from ..client.references import ReferenceGate
from ..errors import RequestInvalid
from ..images.references import shown
from ..model.references import StandIn, reference_name
from ..model.validation import Problem
from .closing import close_tree

__all__ = ["ReferenceUploads", "Uploaded"]

_THUMB = 96


@dataclass(frozen=True)
class Uploaded:
    """One uploaded image as a request carries it: the file's name and its stand-in."""

    name: str
    stand_in: str


class _Tile:
    """One uploaded image on screen, its thumbnail and a remove button: reused from upload to upload, never replaced."""

    def __init__(self, remove: Callable[[int], None], index: int) -> None:
        square = w.Layout(width=f"{_THUMB}px", height=f"{_THUMB}px", object_fit="contain")  # the buttons in line
        self.image = w.Image(format="jpeg", layout=square)
        self.button = w.Button(description="remove", icon="times", layout=w.Layout(width=f"{_THUMB}px"))
        self.button.on_click(lambda _: remove(index))
        self.box = w.VBox([self.image, self.button], layout=w.Layout(margin="2px"))

    def show(self, uploaded: Uploaded, thumbnail: bytes) -> w.VBox:
        said = f"{uploaded.name} ({reference_name(uploaded.stand_in)})"
        self.image.value = thumbnail  # no tooltip on it: ipywidgets 8.1's front end then fails to draw an Image
        self.button.tooltip = f"remove {said}"
        return self.box


class ReferenceUploads:
    """The upload button, the thumbnails of the images taken from it and why any was refused; ``on_change`` is
    called when the images change."""

    def __init__(self, gate: ReferenceGate, on_change: Callable[[], Any]) -> None:
        self.gate = gate
        self.on_change = on_change
        self.images: list[Uploaded] = []
        self.button = w.FileUpload(
            accept="image/*",
            multiple=True,
            description="Add images",
            tooltip="local reference images, sent inline as PNG (at most 32 megapixels and 6 MiB each)",
            layout=w.Layout(width="auto", flex="0 0 auto"),
        )
        self.tiles = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.notes = w.HTML()
        self._tiles: list[_Tile] = []
        self.button.observe(lambda change: self.take(change["new"]), "value")

    @property
    def stand_ins(self) -> list[str]:
        """The uploaded images as a request carries them, in the order they were added."""
        return [u.stand_in for u in self.images]

    def widgets(self) -> list[w.Widget]:
        """Every widget made here, on screen or not (for closing)."""
        return [self.button, self.tiles, self.notes, *(tile.box for tile in self._tiles)]

    def take(self, files: Iterable[Mapping[str, Any]]) -> None:
        """Add the files of an upload (ipywidgets' ``{"name", "content", ...}`` dicts) as references, say why any was
        refused, and drop the upload's bytes from the widget."""
        files = tuple(files)
        if not files:
            return
        refused = []
        try:
            for file in files:
                name = str(file.get("name") or "image")
                made = self._inline(name, bytes(file["content"]))
                if isinstance(made, str):
                    self.images.append(Uploaded(name, made))
                else:
                    refused.extend(made)
        finally:
            self.button.value = ()  # handed over: neither the kernel nor the browser keeps the bytes
        self.notes.value = "".join(
            f"<div style='color:#b00020'><b>references</b>: {html.escape(said)}</div>" for said in refused
        )
        self._show()

    def _inline(self, name: str, data: bytes) -> str | list[str]:
        """The stand-in of ``data`` made an inline PNG, or the API's messages refusing it (naming the file)."""
        try:
            made = self.gate.plan_sweep({"references": [[data]]})  # as client.plan makes a local image inline
        except RequestInvalid as exc:
            return [p.message.replace(shown(data), name, 1) for p in exc.report.errors if isinstance(p, Problem)]
        return str(made["references"][0][0])

    def remove(self, index: int) -> None:
        """Take the ``index``-th uploaded image out of the references."""
        if 0 <= index < len(self.images):
            del self.images[index]
            self.notes.value = ""
            self._show()

    def _show(self) -> None:
        while len(self._tiles) < len(self.images):
            self._tiles.append(_Tile(self.remove, len(self._tiles)))
        shown_tiles = [tile.show(u, self._thumbnail(u)) for tile, u in zip(self._tiles, self.images, strict=False)]
        if tuple(shown_tiles) != self.tiles.children:
            self.tiles.children = shown_tiles
        self.on_change()

    def _thumbnail(self, uploaded: Uploaded) -> bytes:
        stand_in = StandIn.parse(uploaded.stand_in)
        cache = self.gate.cache
        image = cache.find(uploaded.stand_in, stand_in.sha256) if stand_in is not None else None
        return cache.thumbnail(image, _THUMB).read_bytes() if image is not None else b""

    def close(self) -> None:
        close_tree(self.widgets())
