"""The runs handed over as rows: ``Ledger.export`` (to CSV, JSON or Parquet).

The report and the full-size images are drawn by the images layer, above the ledger: ask the client
(``client.report(client.ledger.runs(verdict="picked"), path)``, ``client.export_images(...)``) or
the command line (``seqnb report``, ``seqnb export``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import SeqnbError

if TYPE_CHECKING:
    from .facade import Ledger

__all__ = ["export", "moved"]


def export(ledger: Ledger, path: str | os.PathLike[str], **filters: Any) -> Path:
    """Write the runs to CSV, JSON or Parquet, chosen by the file's extension."""
    from .frames import export as write

    return write(ledger.runs(**filters), path)


def moved(what: str) -> NoReturn:
    """``ledger.report`` and ``ledger.export_images`` moved to the client: say where, with the call to write."""
    raise SeqnbError(
        f"ledger.{what}(...) moved to the client: client.{what}(client.ledger.runs(...filters...), path), e.g. "
        f'client.{what}(client.ledger.runs(verdict="picked"), "picked{".html" if what == "report" else ""}"); '
        f"or `seqnb {what.split('_')[0]}` on the command line"
    )
