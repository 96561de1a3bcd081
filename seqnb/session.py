"""``seqnb.connect()``: a client with its ledger and gallery, the usual way in; and the grids of any runs.

``compare_grid`` and ``contact_sheet`` draw runs from their own client's gallery (its image cache),
else from the default cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api.auth import Secret
from .client.run import AsyncRun
from .client.sync import Client
from .images.cache import ImageCache
from .images.gallery import Gallery, cores_of
from .ledger.facade import Ledger

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["compare_grid", "connect", "contact_sheet", "equip", "gallery_of"]


def connect(
    token: str | Secret | None = None,
    base_url: str | None = None,
    *,
    ledger: Ledger | str | os.PathLike[str] | bool | None = True,
    download: bool | ImageCache | Gallery = True,
    **kw: Any,
) -> Client:
    """A client for RunComfy (with a token) or the embedded emulator (without one); see ``Client``.

    Every run is recorded in the ledger: ``ledger=True`` opens ``$SEQNB_LEDGER`` or
    ./seqnb-ledger.sqlite; pass a path, a ``Ledger``, or ``False`` for none. With ``download``
    (the default) each run's images are fetched into the image cache (``$SEQNB_CACHE`` or
    ~/.cache/seqnb/images, or the ``ImageCache`` given) as soon as it completes; give a ``Gallery``
    to choose its cache and scorer (``Gallery(scorer=my_clip_score)``).
    """
    return equip(Client(token, base_url, **kw), ledger=ledger, download=download)


def equip(
    client: Client,
    *,
    ledger: Ledger | str | os.PathLike[str] | bool | None = True,
    download: bool | ImageCache | Gallery = True,
) -> Client:
    """Give ``client`` a ledger and a gallery where it has none yet (``connect`` and the Studio use this)."""
    if client.ledger is None and ledger is not None and ledger is not False:
        client.use_ledger(ledger if isinstance(ledger, Ledger) else Ledger(None if ledger is True else ledger))
    if client.gallery is None and download is not False:
        gallery = download if isinstance(download, Gallery) else None
        if gallery is None:
            gallery = Gallery(download if isinstance(download, ImageCache) else ImageCache(), client.ledger)
        client.use_gallery(gallery)
    return client


def gallery_of(runs: Any) -> Gallery:
    """The gallery of the runs' own client (``seqnb.connect`` gives it one), else a new one over the default cache."""
    for core in cores_of(runs):
        if isinstance(core, AsyncRun) and core.bound and core.client.gallery is not None:
            return core.client.gallery
    return Gallery()


def compare_grid(runs: Any, size: int | None = None) -> ipywidgets.VBox:
    """Several runs as one grid widget: a row per run, frames aligned, labels naming what differs."""
    from .images.grid import grid  # ipywidgets loads only when a grid is asked for

    return grid(gallery_of(runs), runs, size)


def contact_sheet(runs: Any, path: str | os.PathLike[str], size: int | None = None) -> Path:
    """Several runs as a PNG contact sheet carrying their provenance."""
    return gallery_of(runs).contact_sheet(runs, path, size)
