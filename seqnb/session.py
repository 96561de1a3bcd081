"""``seqnb.connect()``: a client with its ledger, the usual way in."""

from __future__ import annotations

import os
from typing import Any

from .auth import Secret
from .client import Client
from .ledger import Ledger

__all__ = ["connect"]


def connect(
    token: str | Secret | None = None,
    base_url: str | None = None,
    *,
    ledger: Ledger | str | os.PathLike[str] | bool | None = True,
    **kw: Any,
) -> Client:
    """A client for RunComfy (with a token) or the embedded emulator (without one); see ``Client``.

    Every run is recorded in the ledger: ``ledger=True`` opens ``$SEQNB_LEDGER`` or
    ./seqnb-ledger.sqlite; pass a path, a ``Ledger``, or ``False`` for none.
    """
    client = Client(token, base_url, **kw)
    if ledger is True:
        ledger = Ledger()
    elif isinstance(ledger, str | os.PathLike):
        ledger = Ledger(ledger)
    if isinstance(ledger, Ledger):
        client.ledger = ledger.attach(client)
    return client
