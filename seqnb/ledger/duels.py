"""Duels: a person's choice between two series, one ledger row each (who, when, the two runs, the outcome, blind).

A duel is written at once, in its own transaction, to the ``duels`` table (``DUELS_MIGRATION``);
an undo deletes its row (only its writer may). Like marks (``seqnb.ledger.marks``), each duel says
who made it, so on a team ledger each person's duels are their own: reads default to the current
user's, ``by="alice"`` reads Alice's, ``by="*"`` everyone's. ``seqnb.ledger.rankings`` fits them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SettingInvalid
from .stores.base import Store, chunks

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DUELS_MIGRATION",
    "DUEL_COLUMNS",
    "OUTCOMES",
    "SCORES",
    "duels_frame",
    "read_duels",
    "record_duel",
    "remove_duel",
]

DUELS_MIGRATION = """
    CREATE TABLE duels (
        id INTEGER PRIMARY KEY,
        left_id TEXT NOT NULL REFERENCES runs(id),
        right_id TEXT NOT NULL REFERENCES runs(id),
        outcome TEXT NOT NULL,
        blind INTEGER NOT NULL,
        "by" TEXT NOT NULL,
        "at" REAL NOT NULL
    );
    CREATE INDEX duels_left ON duels(left_id);
    CREATE INDEX duels_right ON duels(right_id);
    CREATE INDEX duels_by ON duels("by", id);
"""
"""The table of duels (``seqnb.ledger.schema.MIGRATIONS`` appends it): never updated, a row deleted by an undo."""

OUTCOMES = ("left", "right", "tie")
SCORES = {"left": 1.0, "right": 0.0, "tie": 0.5}
"""Each outcome as the left series' score: a tie is half a win for each."""
DUEL_COLUMNS = ("id", "left_id", "right_id", "outcome", "blind", "by", "at")


def record_duel(store: Store, left: str, right: str, outcome: str, *, blind: bool, by: str) -> int:
    """Write one choice, after checking it: both runs in the ledger, two different runs, a known outcome; its id."""
    if outcome not in OUTCOMES:
        raise SettingInvalid(f"outcome={outcome!r}: give 'left' or 'right' (the one that won), or 'tie'")
    if not isinstance(left, str) or not isinstance(right, str) or left == right:
        raise SettingInvalid(f"a duel is between two different runs, not {left!r} and {right!r}")
    with store.guard("record a duel"), store.transaction():
        found = {r[0] for r in store.execute("SELECT id FROM runs WHERE id IN (?, ?)", (left, right)).fetchall()}
        missing = [run for run in (left, right) if run not in found]
        if missing:
            raise SettingInvalid(
                f"run_id={missing[0]!r}: no such run in ledger {store.location}; ledger.runs() lists them"
            )
        row = store.execute(
            'INSERT INTO duels (left_id, right_id, outcome, blind, "by", "at") VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
            (left, right, outcome, int(bool(blind)), by, store.now()),
        ).fetchone()
    return int(row[0])


def remove_duel(store: Store, duel_id: int, by: str) -> None:
    """Delete a duel of ``by`` (an undo); refuses one that is not there or is someone else's."""
    with store.guard(f"remove duel {duel_id}"), store.transaction():
        rows = store.execute('SELECT "by" FROM duels WHERE id = ?', (int(duel_id),)).fetchall()
        if not rows:
            raise SettingInvalid(
                f"duel_id={duel_id!r}: no such duel in ledger {store.location}; ledger.duels() lists them"
            )
        if rows[0][0] != by:
            raise SettingInvalid(f"duel {duel_id} is {rows[0][0]}'s, not {by}'s: each person takes back only their own")
        store.execute("DELETE FROM duels WHERE id = ?", (int(duel_id),))


def read_duels(store: Store, run_ids: Iterable[str] | None, who: str | None) -> list[tuple[Any, ...]]:
    """The duels (rows of ``DUEL_COLUMNS``, in id order) between runs of ``run_ids`` (None: all), by ``who`` (None: all)."""
    columns = ", ".join(f'"{c}"' if c in ("by", "at") else c for c in DUEL_COLUMNS)
    mine, args = ('"by" = ?', [who]) if who is not None else ("1 = 1", [])
    with store.guard("read duels"):
        if run_ids is None:
            rows, _ = store.fetch(f"SELECT {columns} FROM duels WHERE {mine} ORDER BY id", args)
            return rows
        ids = list(dict.fromkeys(run_ids))
        wanted = set(ids)
        found: dict[int, tuple[Any, ...]] = {}
        for chunk in chunks(ids, 400):  # 400: each chunk is bound twice per query
            marks = ", ".join("?" * len(chunk))
            rows, _ = store.fetch(
                f"SELECT {columns} FROM duels WHERE {mine} AND (left_id IN ({marks}) OR right_id IN ({marks}))",
                [*args, *chunk, *chunk],
            )
            found.update((int(r[0]), tuple(r)) for r in rows if r[1] in wanted and r[2] in wanted)
    return [found[k] for k in sorted(found)]


def duels_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """The duel rows as a frame: ``id``, ``left_id``, ``right_id``, ``outcome``, ``blind`` (bool), ``by``, ``at`` (UTC)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(list(rows), columns=list(DUEL_COLUMNS))
    frame["id"] = frame["id"].astype("int64")
    frame["blind"] = frame["blind"].astype(bool)
    frame["outcome"] = pd.Categorical(frame["outcome"], categories=list(OUTCOMES))
    frame["at"] = pd.to_datetime(pd.to_numeric(frame["at"]), unit="s", utc=True).astype("datetime64[ns, UTC]")
    return frame
