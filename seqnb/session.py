"""``seqnb.connect()``: a client with its ledger, the usual way in."""

from __future__ import annotations

import os
from typing import Any

from .api.auth import Secret
from .client.sync import Client
from .images.cache import ImageCache
from .images.gallery import Gallery
from .ledger.facade import Ledger

__all__ = ["connect", "equip"]


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
    """Attach a ledger and a gallery to ``client`` where it has none yet (``connect`` and the Studio use this)."""
    if client.ledger is None:
        if ledger is True:
            ledger = Ledger()
        elif isinstance(ledger, str | os.PathLike):
            ledger = Ledger(ledger)
        if isinstance(ledger, Ledger):
            ledger.attach(client)
    if isinstance(download, Gallery) and client.gallery is None:
        download.ledger = download.ledger or client.ledger
        download.attach(client)
    elif download and client.gallery is None:
        cache = download if isinstance(download, ImageCache) else ImageCache()
        Gallery(cache, client.ledger).attach(client)
    return client
