"""Bringing runs back: a run rebuilt from its row, and the atomic claim of runs whose session is gone.

The claim is the lease: a run's ``owner`` changes only here, under the store's serializing lock,
and a session that lost a run can no longer write it (``schema.UPSERT_RUN``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..errors import LedgerError
from ..model.request import Request
from ..model.spec import COUNT_RANGE
from ..runs.run import ACTIVE, RunCore
from .stores.base import Store

__all__ = ["RESUMABLE", "SCOPES", "Scope", "children_of", "claim_runs", "restore_run", "restore_runs"]

log = logging.getLogger(__name__)
_CHUNK = 500
"""Ids per ``IN (...)``: far below either store's limit on bound parameters."""

Scope = Literal["mine", "team"]
SCOPES = ("mine", "team")
RESUMABLE = ("created", "submitting", *ACTIVE)
"""Statuses of runs not yet ended: what a resume may pick up."""


def restore_run(store: Store, run_id: str) -> RunCore:
    """A run rebuilt from its row (belonging to no client)."""
    with store.guard("read"):
        rows, columns = store.fetch("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise LedgerError(f"no run {run_id!r} in ledger {store.location}: check the id (ledger.runs() lists them)")
        images, _ = store.fetch(
            "SELECT url FROM images WHERE run_id=? ORDER BY idx LIMIT ?", (run_id, max(COUNT_RANGE))
        )
    return _rebuilt(dict(zip(columns, rows[0], strict=True)), [u for (u,) in images], store.location)


def restore_runs(store: Store, run_ids: Sequence[str]) -> list[RunCore]:
    """Many runs rebuilt from their rows in a few queries, in the order given; a missing or unreadable row is left
    out (and logged): what a view reads back must not fail for one row another tool wrote."""
    records: dict[str, dict[str, object]] = {}
    urls: dict[str, list[str]] = {}
    wanted = list(dict.fromkeys(run_ids))
    with store.guard("read"):
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows, columns = store.fetch(f"SELECT * FROM runs WHERE id IN ({marks})", chunk)
            records.update({str(row[0]): dict(zip(columns, row, strict=True)) for row in rows})
            images, _ = store.fetch(
                f"SELECT run_id, url FROM images WHERE run_id IN ({marks}) AND idx < ? ORDER BY run_id, idx",
                [*chunk, max(COUNT_RANGE)],
            )
            for run_id, url in images:
                urls.setdefault(run_id, []).append(url)
    runs = []
    for run_id in wanted:
        record = records.get(run_id)
        if record is None:
            continue
        try:
            runs.append(_rebuilt(record, urls.get(run_id, []), store.location))
        except LedgerError as exc:
            log.warning("%s", exc)
    return runs


def _rebuilt(record: dict[str, Any], urls: list[str], location: str) -> RunCore:
    try:
        request = Request.from_payload(record["model"], json.loads(record["payload"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise LedgerError(f"ledger {location}: run {record['id']} has an unreadable request ({exc})") from exc
    return RunCore(
        request=request,
        id=record["id"],
        request_id=record["request_id"],
        status=record["status"],
        error=record["error"],
        images=[u for u in urls if u][: request.count],  # never more than asked (a hostile row may hold 10,000)
        created_at=record["created_at"],
        submitted_at=record["submitted_at"],
        started_at=record["started_at"],
        finished_at=record["finished_at"],
        server_created_at=record["server_created_at"],
        server_finished_at=record["server_finished_at"],
        sweep_id=record["sweep_id"],
        label=record["label"] or "",
        parent_id=record["parent_id"],
        notes={"restored": record["note"]} if record["note"] else {},
        cost=_money(record["cost"]),
        cost_source=record["cost_source"],
    )


def _money(value: object) -> Decimal | None:
    """A stored charge, or None when none was recorded (or another tool wrote something else)."""
    try:
        amount = Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
    return amount if amount is not None and amount.is_finite() and amount >= 0 else None


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
