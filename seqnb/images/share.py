"""Results that travel: a report or an export of the runs a ledger filter or a client's selection chooses.

``Client.report`` / ``Client.export_images`` and the command line call into here: the ledger (or the runs)
chooses, ``seqnb.images.series`` collects, ``seqnb.images.report`` and ``seqnb.images.export`` write.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LedgerError
from ..ledger.rankings import judging_tables
from ..runs.run import RunCore
from .export import Exported, export_series
from .report import DEFAULT_THUMB, Full, write_report
from .series import Series, from_gallery, from_ledger, plain

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.facade import Ledger
    from ..ledger.marks import RunMarks
    from .gallery import Gallery

__all__ = ["export_ledger", "export_runs", "marks_text", "report_ledger", "report_runs", "spend_rows"]


def spend_rows(spend: pd.DataFrame) -> list[dict[str, Any]]:
    """The spend frame's rows as plain values."""
    records: list[dict[Any, Any]] = spend.to_dict("records")
    return [{str(k): plain(v) for k, v in row.items()} for row in records]


def marks_text(marks: RunMarks) -> str:
    """A run's marks in a few words: ``rating 4/5 · picked · #hero · frames 1:5 2:3 · "the comment"``."""
    bits = [f"rating {marks.rating}/5"] if marks.rating else []
    bits += [marks.verdict] if marks.verdict else []
    bits += [" ".join(f"#{t}" for t in marks.tags)] if marks.tags else []
    if marks.frame_ratings:
        bits.append("frames " + " ".join(f"{i + 1}:{r}" for i, r in sorted(marks.frame_ratings.items())))
    bits += [f"\u201c{marks.comment}\u201d"] if marks.comment else []
    return " · ".join(bits)


def _with_marks(ledger: Ledger, series: list[Series], marks_by: str | None) -> list[Series]:
    marks = ledger.marks_of([s.run.id for s in series], by=marks_by)
    for one in series:
        mark = marks.get(one.run.id)
        if mark:
            one.row.update(verdict=mark.verdict, rating=mark.rating, marks=marks_text(mark))
            one.row["frame_ratings"] = {str(i): r for i, r in (mark.frame_ratings or {}).items()}
    return series


def _chosen(ledger: Ledger, filters: dict[str, Any], picked: bool, marks_by: str | None) -> pd.DataFrame:
    frame = ledger.runs(**filters)
    if picked and not frame.empty:
        ids = frame["id"].astype(str)
        marks = ledger.marks_of(ids, by=marks_by)
        frame = frame[[i in marks and marks[i].verdict == "picked" for i in ids]]
    if frame.empty:
        shown = ", ".join([*(f"{k}={v!r}" for k, v in filters.items()), *(["picked"] if picked else [])])
        hint = " (pick runs with run.pick() or ledger.mark(id, verdict='picked'))" if picked else ""
        raise LedgerError(
            f"no run in {ledger.location} matches {shown or 'no filter'}: check the filters "
            f"(ledger.runs() lists the runs){hint}"
        )
    return frame


def _report(
    series: list[Series],
    ledger: Ledger | None,
    marks_by: str | None,
    path: str | os.PathLike[str],
    *,
    title: str | None,
    thumb: int,
    full: Full,
) -> Path:
    """Write the report of ``series``; with a ledger, their marks, their spend by model and the judging tables too."""
    spend: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    if ledger is not None:
        ids = [s.run.id for s in series]
        _with_marks(ledger, series, marks_by)
        spend = spend_rows(ledger.spend("model", ids=ids))
        tables = judging_tables(ledger, ids, marks_by)
    return write_report(series, path, title=title, spend=spend, thumb=thumb, full=full, tables=tables)


def report_ledger(
    ledger: Ledger,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    thumb: int = DEFAULT_THUMB,
    full: Full = "none",
    picked: bool = False,
    marks_by: str | None = None,
    **filters: Any,
) -> Path:
    """The report of the runs matching ``filters`` (those of ``Ledger.runs``; ``picked``: only picked ones), with their spend.

    ``marks_by``: whose marks show and count as picks (yours by default, ``"*"`` for everyone's latest).
    """
    series = from_ledger(ledger, _chosen(ledger, filters, picked, marks_by))
    return _report(series, ledger, marks_by, path, title=title, thumb=thumb, full=full)


def export_ledger(
    ledger: Ledger,
    directory: str | os.PathLike[str],
    *,
    picked: bool = False,
    marks_by: str | None = None,
    **filters: Any,
) -> Exported:
    """The full-size frames of the runs matching ``filters`` as provenance PNGs, and their rows as ``runs.csv``."""
    frame = _chosen(ledger, filters, picked, marks_by)
    series = _with_marks(ledger, from_ledger(ledger, frame), marks_by)
    marks = {s.run.id: s.row.get("marks") for s in series}
    return export_series(series, directory, frame.assign(marks=frame["id"].astype(str).map(marks)))


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
    return _report(series, ledger, None, path, title=title, thumb=thumb, full=full)


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
