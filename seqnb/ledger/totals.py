"""The SQL of ``Ledger.spend``: one GROUP BY over the columns spend's rules read, so no run row is loaded.

The rows come back grouped by the keys asked and by every value the rules look at (status, backend,
currency, estimate, charge, flag, images asked), with how many runs share them: few groups for
many runs. ``frames.spend`` then applies its own rules to the groups, weighted by their counts,
so the SQL can never read an odd value (``'n/a'``, ``''``, ``'1e-3'``) differently from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["spend_query", "totals_frame"]

_KEYS = {"model": "runs.model", "sweep": "runs.sweep_id", "user": "s.username", "host": "s.host"}
_READ = ("status", "backend", "currency", "est_cost", "cost", "cost_differs", "requested")  # runs_spend's order
_NAMES = {"sweep": "sweep_id", "day": "created_at"}


def spend_query(by: str | Sequence[str], where: str, page: str, day: str) -> tuple[str, list[str]]:
    """The grouped SELECT for ``runs_filter``'s ``where`` (and a LIMIT/OFFSET ``page``), and its column names.

    ``day`` is the store's whole-days-since-the-epoch expression (``Store.day``). Unknown keys are
    left to ``frames.spend`` to refuse, by name.
    """
    keys = [by] if isinstance(by, str) else list(by)
    exprs: dict[str, str] = {}
    for key in keys:
        if key == "day":
            exprs["created_at"] = day
        elif key in _KEYS:
            exprs[_NAMES.get(key, key)] = _KEYS[key]
    for column in _READ:
        exprs[column] = f"runs.{column}"
    if page:
        where = f" WHERE runs.id IN (SELECT runs.id FROM runs{where} ORDER BY runs.created_at DESC{page})"
    join = " LEFT JOIN sessions s ON s.id = runs.session" if {"user", "host"} & set(keys) else ""
    select = ", ".join(f'{expr} AS "{name}"' for name, expr in exprs.items())
    groups = ", ".join(exprs.values())
    sql = f"SELECT {select}, COUNT(*) AS n FROM runs{join}{where} GROUP BY {groups}"
    return sql, [*exprs, "n"]


def totals_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """The groups typed as ``frames.spend_frame`` types runs (a day as its midnight), with their count ``n``."""
    import pandas as pd

    from .frames import spend_frame

    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in ("id", "model", "created_at", "sweep_id", "user", "host"):
        if column not in frame:
            frame[column] = None
    if len(frame):
        frame["created_at"] = pd.to_numeric(frame["created_at"], errors="coerce") * 86400
    typed = spend_frame(list(frame.itertuples(index=False, name=None)), list(frame.columns))
    typed["n"] = pd.to_numeric(frame["n"]).astype("int64")
    return typed
