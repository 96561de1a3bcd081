"""The runs handed over: ``Ledger.export`` (rows to a file), ``Ledger.report`` and ``Ledger.export_images``.

For the report and the images the ledger only chooses the runs; the images layer draws and writes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..images.report import Full
    from .facade import Ledger

__all__ = ["export", "export_images", "report"]


def export(ledger: Ledger, path: str | os.PathLike[str], **filters: Any) -> Path:
    """Write the runs to CSV, JSON or Parquet, chosen by the file's extension."""
    from .frames import export as write

    return write(ledger.runs(**filters), path)


def report(
    ledger: Ledger,
    path: str | os.PathLike[str],
    *,
    picked: bool = False,
    full: Full = "none",
    thumb: int = 256,
    marks_by: str | None = None,
    **filters: Any,
) -> Path:
    """One self-contained HTML file of the runs matching ``filters`` (``sweep=``, ``since=``, ...; see ``Ledger.runs``).

    ``picked``: only the runs you picked (``marks_by="*"``: anyone's picks). ``full="embed"`` puts the
    full-size images inside, ``full="beside"`` writes them in a folder next to it.
    """
    from ..images.share import report_ledger

    return report_ledger(ledger, path, picked=picked, full=full, thumb=thumb, marks_by=marks_by, **filters)


def export_images(
    ledger: Ledger,
    directory: str | os.PathLike[str],
    *,
    picked: bool = False,
    marks_by: str | None = None,
    **filters: Any,
) -> list[Path]:
    """Write the matching (``picked``) runs' full-size frames as PNGs with their provenance, and ``runs.csv``."""
    from ..images.share import export_ledger

    done = export_ledger(ledger, directory, picked=picked, marks_by=marks_by, **filters)
    return [*done.images, done.table]
