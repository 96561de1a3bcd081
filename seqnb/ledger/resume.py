"""Bringing runs back: a run rebuilt from its row, and the atomic claim of runs whose session is gone.

The claim is the lease: a run's ``owner`` changes only here, under the store's serializing lock,
and a session that lost a run can no longer write it (``schema.UPSERT_RUN``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..errors import LedgerError
from ..model.pricing import amount_or_none
from ..model.request import Request
from ..model.spec import COUNT_RANGE
from ..runs.run import ACTIVE, RunCore
from .schema import RUN_FIELDS
from .stores.base import Store, chunks

__all__ = ["RESUMABLE", "SCOPES", "Scope", "children_of", "claim_runs", "restore_run", "restore_runs"]

log = logging.getLogger(__name__)

Scope = Literal["mine", "team"]
SCOPES = ("mine", "team")
RESUMABLE = ("created", "submitting", *ACTIVE)
"""Statuses of runs not yet ended: what a resume may pick up."""


def restore_run(store: Store, run_id: str) -> RunCore:
    """A run rebuilt from its row (belonging to no client); ``LedgerError`` if it is missing or unreadable."""
    return restore_runs(store, [run_id], strict=True)[0]


def restore_runs(store: Store, run_ids: Sequence[str], strict: bool = False) -> list[RunCore]:
    """Many runs rebuilt from their rows in a few queries, in the order given; a missing or unreadable row is left
    out (and logged): what a view reads back must not fail for one row another tool wrote. ``strict``: raise instead."""
    records: dict[str, dict[str, object]] = {}
    urls: dict[str, list[str]] = {}
    wanted = list(dict.fromkeys(run_ids))
    with store.guard("read"):
        for chunk in chunks(wanted):
            marks = ", ".join("?" * len(chunk))
            rows, columns = store.fetch(f"SELECT * FROM runs WHERE id IN ({marks})", chunk)
            records.update({str(row[0]): dict(zip(columns, row, strict=True)) for row in rows})
            images, _ = store.fetch(  # never more than a run may have (a hostile row may hold 10,000)
                f"SELECT run_id, url FROM images WHERE run_id IN ({marks}) AND idx >= 0 AND idx < ? ORDER BY run_id, idx",
                [*chunk, max(COUNT_RANGE)],
            )
            for run_id, url in images:
                urls.setdefault(run_id, []).append(url)
    runs = []
    for run_id in wanted:
        record = records.get(run_id)
        if record is None and strict:
            raise LedgerError(f"no run {run_id!r} in ledger {store.location}: check the id (ledger.runs() lists them)")
        try:
            if record is not None:
                runs.append(_rebuilt(record, urls.get(run_id, []), store.location))
        except LedgerError as exc:
            if strict:
                raise
            log.warning("%s", exc)
    return runs


def _rebuilt(record: dict[str, Any], urls: list[str], location: str) -> RunCore:
    try:
        request = Request.from_payload(record["model"], json.loads(record["payload"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise LedgerError(f"ledger {location}: run {record['id']} has an unreadable request ({exc})") from exc
    return RunCore(
        request=request,
        images=[u for u in urls if u][: request.count],  # never more than asked (a hostile row may hold 10,000)
        label=record["label"] or "",
        notes={"restored": record["note"]} if record["note"] else {},
        cost=amount_or_none(record["cost"]),  # None: not recorded (or not an amount, by another tool)
        **{column: record[column] for column in ("id", "status", *RUN_FIELDS)},
    )


def children_of(store: Store, run_id: str) -> list[str]:
    """The ids of the runs whose parent is ``run_id``, oldest first."""
    with store.guard(f"read the children of run {run_id}"):
        rows = store.execute("SELECT id FROM runs WHERE parent_id=? ORDER BY created_at", (run_id,)).fetchall()
    return [r[0] for r in rows]


def claim_runs(store: Store, session: str, scope: Scope, live: Callable[[], set[str]]) -> tuple[list[str], list[str]]:
    """Make ``session`` the owner of the runs not yet ended whose session is gone; returns their ids, and the owner
    of each run of the scope it left alone (a live session's).

    ``live`` tells the sessions alive now (``SessionKeeper.live``); it is asked inside the lock.
    The rules are ``Ledger.claim``'s.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    with store.guard("claim runs to resume"), store.transaction(lock=True):
        alive = live()
        me = store.execute("SELECT username FROM sessions WHERE id=?", (session,)).fetchone()
        rows = store.execute(
            "SELECT runs.id, runs.owner, o.username FROM runs LEFT JOIN sessions o ON o.id = runs.owner "
            f"WHERE runs.status IN ({', '.join('?' * len(RESUMABLE))}) ORDER BY runs.created_at",
            RESUMABLE,
        ).fetchall()
        mine = [
            (run_id, owner)
            for run_id, owner, user in rows
            if owner is None or (owner != session and (scope == "team" or (me is not None and user == me[0])))
        ]
        taken = [run_id for run_id, owner in mine if owner not in alive]
        store.executemany("UPDATE runs SET owner=? WHERE id=?", [(session, run_id) for run_id in taken])
    return taken, [owner for _, owner in mine if owner in alive]
