"""A run's family: its parents up the chain (reruns and promotes link each new run to the one it came from) and all its children down."""

from __future__ import annotations

from ..errors import SettingInvalid
from .stores.base import Store

__all__ = ["family"]

_CHUNK = 500  # ids per IN (...)


def family(store: Store, run_id: str) -> dict[str, int]:
    """Each run of ``run_id``'s lineage with its generation: -1 its parent, -2 the parent's parent, 0 itself, 1 its children..."""
    with store.guard(f"read the lineage of run {run_id}"):
        found = store.execute("SELECT parent_id FROM runs WHERE id=?", (run_id,)).fetchall()
        if not found:
            raise SettingInvalid(f"run_id={run_id!r}: no such run in ledger {store.location}; ledger.runs() lists them")
        generations = {run_id: 0}
        parent, up = found[0][0], -1
        while parent is not None and parent not in generations:  # a cycle (written by hand) ends the walk
            generations[parent] = up
            rows = store.execute("SELECT parent_id FROM runs WHERE id=?", (parent,)).fetchall()
            parent, up = (rows[0][0] if rows else None), up - 1
        level, down = [run_id], 1
        while level:
            children: list[str] = []
            for start in range(0, len(level), _CHUNK):
                chunk = level[start : start + _CHUNK]
                rows = store.execute(
                    f"SELECT id FROM runs WHERE parent_id IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
                children += [r[0] for r in rows if r[0] not in generations]
            for child in children:
                generations[child] = down
            level, down = children, down + 1
    return generations
