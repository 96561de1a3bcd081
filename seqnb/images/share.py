"""Results that travel: a report or an export of the runs a ledger filter or a client's selection chooses.

``Ledger.report`` / ``Ledger.export_images`` and ``Client.report`` / ``Client.export_images`` are
one-line calls into here: the ledger (or the runs) chooses, ``seqnb.images.series`` collects,
``seqnb.images.report`` and ``seqnb.images.export`` write.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LedgerError
from ..runs.run import RunCore
from .export import Exported, export_series
from .report import DEFAULT_THUMB, Full, write_report
from .series import Series, from_gallery, from_ledger, plain

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.facade import Ledger
    from .gallery import Gallery

__all__ = ["export_ledger", "export_runs", "report_ledger", "report_runs", "spend_rows"]


def spend_rows(spend: pd.DataFrame) -> list[dict[str, Any]]:
    """The spend frame's rows as plain values."""
    records: list[dict[Any, Any]] = spend.to_dict("records")
    return [{str(k): plain(v) for k, v in row.items()} for row in records]


def _chosen(ledger: Ledger, filters: dict[str, Any]) -> pd.DataFrame:
    frame = ledger.runs(**filters)
    if frame.empty:
        shown = ", ".join(f"{k}={v!r}" for k, v in filters.items()) or "no filter"
        raise LedgerError(
            f"no run in {ledger.location} matches {shown}: check the filters (ledger.runs() lists the runs)"
        )
    return frame


def report_ledger(
    ledger: Ledger,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    thumb: int = DEFAULT_THUMB,
    full: Full = "none",
    **filters: Any,
) -> Path:
    """The report of the runs matching ``filters`` (those of ``Ledger.runs``), with their spend."""
    frame = _chosen(ledger, filters)
    spend = spend_rows(ledger.spend("model", ids=list(frame["id"].astype(str))))
    return write_report(from_ledger(ledger, frame), path, title=title, spend=spend, thumb=thumb, full=full)


def export_ledger(ledger: Ledger, directory: str | os.PathLike[str], **filters: Any) -> Exported:
    """The full-size frames of the runs matching ``filters`` as provenance PNGs, and their rows as ``runs.csv``."""
    frame = _chosen(ledger, filters)
    return export_series(from_ledger(ledger, frame), directory, frame)


def _series(runs: Sequence[RunCore], gallery: Gallery, ledger: Ledger | None) -> tuple[list[Series], Any]:
    frame = ledger.runs(ids=[r.id for r in runs]) if ledger is not None else None
    return from_gallery(gallery, runs, frame), frame


def report_runs(
    runs: Sequence[RunCore],
    path: str | os.PathLike[str],
    gallery: Gallery,
    ledger: Ledger | None = None,
    *,
    title: str | None = None,
    thumb: int = DEFAULT_THUMB,
    full: Full = "none",
) -> Path:
    """The report of some runs, their frames from ``gallery`` (downloaded if need be), rows and spend from ``ledger``."""
    series, _ = _series(runs, gallery, ledger)
    spend = spend_rows(ledger.spend("model", ids=[r.id for r in runs])) if ledger is not None else []
    return write_report(series, path, title=title, spend=spend, thumb=thumb, full=full)


def export_runs(
    runs: Sequence[RunCore], directory: str | os.PathLike[str], gallery: Gallery, ledger: Ledger | None = None
) -> Exported:
    """Some runs' full-size frames as provenance PNGs, and their rows as ``runs.csv``."""
    import pandas as pd

    series, frame = _series(runs, gallery, ledger)
    if frame is None:
        frame = pd.DataFrame(
            [{"id": s.run.id, "model": s.run.model, "prompt": s.run.request.prompt, **s.row} for s in series]
        )
    return export_series(series, directory, frame)
