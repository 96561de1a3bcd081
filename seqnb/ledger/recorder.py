"""What one client writes into a ledger: its session, and its runs' rows, write-or-refuse.

A new run's row is written before its submit may leave, and the ``submitting`` write is the lease: a run another
session has taken over is not written, and its submit never leaves from here. Every later change is written at the
end of the loop's turn in which it happened, with the others of that turn, in one transaction; one that fails is
kept, retried and shown on the run and by ``Ledger.health()``, never lost or raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LedgerError, RunTakenOver
from ..model.request import Request
from ..model.seeds import INT64_RANGE, SEED_HINT
from ..runs.run import RunCore, RunEvent
from .budget import TeamBudget
from .image_rows import ImageRows
from .schema import RUN_FIELDS, UPSERT_RUN, run_values
from .sessions import SessionInfo, SessionKeeper
from .stores import Store

if TYPE_CHECKING:
    from ..api.backend import Backend
    from ..model.sweep import SweepPlan

__all__ = ["Recorder", "run_row", "static_columns", "write_rows"]

log = logging.getLogger("seqnb.ledger")
_UPSERT_IMAGE = (
    "INSERT INTO images (run_id, idx, url) VALUES (?, ?, ?) "
    "ON CONFLICT(run_id, idx) DO UPDATE SET url=excluded.url WHERE images.path IS NULL"
)


class RecordedLedger(Protocol):
    """What a recorder uses of its ledger (``seqnb.ledger.facade.Ledger``, which makes its recorders)."""

    store: Store
    location: str
    team_budget: TeamBudget
    image_rows: ImageRows
    keeper: SessionKeeper

    def write_rows(self, rows: Sequence[tuple[RunCore, dict[str, Any]]]) -> list[bool]: ...
    def end_session(self, session: str) -> None: ...


class Recorder:
    """What one client writes into a ledger: its session, and its runs' rows (see ``Ledger.recorder``).

    ``on_taken_over(run)``: told when another session has taken one of its runs over (the client stops watching it).
    ``runs``: the client's runs by id, as they come (a note written on one of them becomes its own: ``annotate``).
    """

    def __init__(
        self,
        ledger: RecordedLedger,
        backend: Backend,
        session: SessionInfo,
        on_taken_over: Callable[[RunCore], None] | None = None,
        runs: Mapping[str, RunCore] | None = None,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.session = session
        self.on_taken_over = on_taken_over
        self.runs: Mapping[str, RunCore] = runs if runs is not None else {}
        self.unsaved: dict[str, RunCore] = {}
        """Runs whose latest change is not written yet: due at the end of this turn of the loop, or failed (retried on
        every later change and by ``flush``)."""
        self.last_error: LedgerError | None = None
        self.ended = False
        self._lock = threading.RLock()  # a read on another thread may flush while the loop does
        self._flush_due: asyncio.Handle | None = None
        self._submitting: list[tuple[RunCore, asyncio.Future[None]]] = []
        self._static: dict[str, tuple[Request, dict[str, Any]]] = {}
        """Runs in flight: the columns of their rows that only their request decides, built once."""

    def record(self, run: RunCore, status: str | None = None) -> None:
        """Write a run's row now; raises ``LedgerError`` (the caller must then not send its submit)."""
        self._write([(run, status)], raise_errors=True)

    async def record_submitting(self, run: RunCore) -> None:
        """Write the run's row as ``submitting``, with the other submits of this moment; ``LedgerError`` if it fails,
        ``RunTakenOver`` if another session owns the run now (either way its submit must not leave). Returns once
        the row is committed."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        self._submitting.append((run, written))
        if len(self._submitting) == 1:
            loop.call_soon(self._write_submitting)
        await written

    def _write_submitting(self) -> None:
        batch, self._submitting = self._submitting, []
        waiting = [(run, done) for run, done in batch if not done.done()]
        outcomes = self._write([(run, "submitting") for run, _ in waiting], raise_errors=False)
        for (run, done), outcome in zip(waiting, outcomes, strict=True):
            if isinstance(outcome, LedgerError):
                done.set_exception(outcome)
            elif outcome is False:  # not ours any more: whoever took it decides, and nothing leaves from here
                done.set_exception(self._taken_over(run))
            else:
                done.set_result(None)

    def _taken_over(self, run: RunCore) -> RunTakenOver:
        """Why a run's submit must not leave: the session that owns it now (named if the ledger says which)."""
        try:
            with self.ledger.store.guard("read a run's owner"):
                row = self.ledger.store.execute(
                    "SELECT runs.owner, s.username, s.host FROM runs LEFT JOIN sessions s ON s.id = runs.owner "
                    "WHERE runs.id=?",
                    (run.id,),
                ).fetchone()
        except LedgerError:
            row = None
        owner = row[0] if row else None
        who = f"session {owner} ({row[1]}@{row[2]})" if row and owner else "another session"
        return RunTakenOver(
            run.id,
            owner,
            f"not sent from this kernel: {who} took run {run.id} over before its submit left (it judged this "
            "session gone) and owns it now, so nothing was sent or charged from here; that session says what "
            f"becomes of it (ledger.runs(ids=[{run.id!r}]) shows its row)",
        )

    def _write(self, items: list[tuple[RunCore, str | None]], raise_errors: bool) -> list[bool | LedgerError]:
        """Write runs' rows in one transaction; per run, written, taken over (False), or why not (``LedgerError``)."""
        outcomes: list[bool | LedgerError] = []
        rows: list[tuple[RunCore, dict[str, Any]]] = []
        for run, status in items:
            try:
                rows.append((run, self._row(run, status)))
                outcomes.append(True)
            except LedgerError as exc:
                if raise_errors:
                    raise
                outcomes.append(exc)
        try:
            written = iter(self.ledger.write_rows(rows) if rows else [])
        except LedgerError as exc:
            if raise_errors:
                raise
            return [exc for _ in items]
        for i, outcome in enumerate(outcomes):
            if outcome is True:
                run = items[i][0]
                if not next(written):
                    outcomes[i] = False
                    self._lost(run)
                if run.done:
                    self._static.pop(run.id, None)
        return outcomes

    def _row(self, run: RunCore, status: str | None) -> dict[str, Any]:
        kept = self._static.get(run.id)
        if kept is None or kept[0] is not run.request:
            kept = (run.request, static_columns(run, self.backend, self.ledger.location))
            if not run.done:
                self._static[run.id] = kept
        return run_row(run, self.backend, self.session.id, status or run.status, self.ledger.location, kept[1])

    def annotate(self, run_id: str, note: str) -> bool:
        """Make ``note`` the note the ledger holds for one of this session's runs and write its row now: the run's
        later writes keep it (and what seqnb says of the run after it). False: not a run this session writes.

        Raises ``LedgerError`` if the write fails; the run keeps the note, and it is retried like any change.
        """
        run = self.runs.get(run_id)
        if run is None or self.ended:
            return False
        with self._lock:  # no write of the run's row with its note of before may land after this one
            run.say("restored", note)
            self.unsaved[run.id] = run
            written = self._write([(run, None)], raise_errors=True)[0] is True
            if self.unsaved.get(run.id) is run:
                del self.unsaved[run.id]
        return written

    def reserve(self, plan: SweepPlan) -> contextlib.AbstractContextManager[None]:
        """Record a sweep's runs all or none, within the team budget if the ledger has one (``TeamBudget.reserve``)."""
        return self.ledger.team_budget.reserve(plan, self.backend)

    def _lost(self, run: RunCore) -> None:
        """Another session took this run over (this one was taken for gone): stop watching it here."""
        run.say("watch", "taken over by another session, which watches it now; this kernel stopped watching it")
        if self.on_taken_over is not None:
            self.on_taken_over(run)

    def on_event(self, event: RunEvent) -> None:
        """Write every change after the submit, at the end of this turn of the loop; a failure is kept, retried and
        shown, never lost or raised."""
        if event.detail == "created" or (event.new == "submitting" and event.old == "created"):
            return  # written, or refused, by the client itself before anything may leave
        with self._lock:
            self.unsaved[event.run.id] = event.run
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop here: write now
            self.flush()
            return
        if self._flush_due is None:
            self._flush_due = loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_due = None
        self.flush()

    def flush(self, raise_errors: bool = False) -> None:
        """Write every change not written yet, in one transaction; ``raise_errors``: raise the ``LedgerError`` if it fails."""
        self.ledger.image_rows.flush()  # image rows a failed write left behind are retried on every change too
        with self._lock:
            runs = list(self.unsaved.values())
            if not runs:
                return
            outcomes = self._write([(run, None) for run in runs], raise_errors=False)
            error: LedgerError | None = None
            for run, outcome in zip(runs, outcomes, strict=True):
                if isinstance(outcome, LedgerError):
                    error = outcome
                    run.say("ledger", f"NOT YET IN THE LEDGER ({outcome}); seqnb retries on every change")
                    continue
                if self.unsaved.get(run.id) is run:
                    del self.unsaved[run.id]
                if run.notes.get("ledger"):
                    run.say("ledger", self.ledger.image_rows.note(run.id))
            if error is None:
                self.last_error = None
                return
            if self.last_error is None or str(error) != str(self.last_error):
                log.error("%s (seqnb keeps it and retries on the next change)", error)
            self.last_error = error
        if raise_errors:
            raise error

    def end(self) -> None:
        """End this session: its runs in flight may be resumed by another session from now on."""
        if self.ended:
            return
        self.flush()
        self.ended = True
        self.ledger.end_session(self.session.id)
        if self in self.ledger.keeper.recorders:
            self.ledger.keeper.recorders.remove(self)


def run_row(
    run: RunCore, backend: Backend, owner: str | None, state: str, where: str, static: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run's row by column name (``schema.run_values`` orders it); ``LedgerError`` for a value the store cannot hold.

    ``static``: the run's ``static_columns``, when the caller keeps them (they change only with its request).
    """
    cost_differs = run.cost_differs
    return {
        **(static if static is not None else static_columns(run, backend, where)),
        **{column: getattr(run, column) for column in (*RUN_FIELDS, "returned", "note")},
        "status": state,
        "updated_at": time.time(),
        "session": owner,
        "owner": owner,
        "cost": None if run.cost is None else str(run.cost),
        "cost_differs": None if cost_differs is None else int(cost_differs),
    }


def static_columns(run: RunCore, backend: Backend, where: str) -> dict[str, Any]:
    """The columns of a run's row that only its request decides (JSON of its payload and options, its estimate)."""
    request = run.request
    resolved = request.resolved()
    seed = request.sent_seed  # the seed sent; the model's default goes apart, when none was sent
    default_seed = resolved.get("seed") if seed is None else None
    if isinstance(seed, int) and seed not in INT64_RANGE:
        raise LedgerError(
            f"ledger {where}: cannot record run {run.id}: seed {seed} does not fit a 64-bit integer; " + SEED_HINT
        )
    kept = ("model", "prompt", "seed", "size", "count", "references", "options")
    options = {**{k: v for k, v in resolved.items() if k not in kept}, **resolved.get("options", {})}  # one flat dict
    cost = request.cost()
    return {
        "id": run.id,
        "backend": backend.kind,
        "base_url": backend.base_url,
        "model": run.model,
        "prompt": request.prompt,
        "seed": seed,
        "size": resolved.get("size"),
        "requested": run.requested,
        "options": json.dumps(options, sort_keys=True, default=str),
        "payload": json.dumps(request.payload(), sort_keys=True, ensure_ascii=False),
        "est_cost": str(cost.amount),
        "currency": cost.currency,
        "default_seed": default_seed,
        "est_source": cost.source,
        "reference_urls": json.dumps(list(request.references)) if request.references else None,
        "label": run.label or None,
    }


def write_rows(store: Store, budget: TeamBudget, rows: Sequence[tuple[RunCore, dict[str, Any]]]) -> list[bool]:
    """Upsert runs' rows (and a completed run's image URLs) in one transaction; per run, whether it was written
    (False: another session owns it now). A new run (``created``) is checked against the team budget first."""
    written: list[bool] = []
    what = f"record run {rows[0][0].id}" if len(rows) == 1 else f"record {len(rows)} runs"
    with store.guard(what), store.transaction():
        for run, row in rows:
            if row["status"] == "created" and not budget.reserving:
                cost = {row["currency"]: Decimal(row["est_cost"])}
                budget.check(cost, row["backend"], f"run {run.id}", exclude=run.id)
            done = bool(store.execute(UPSERT_RUN, run_values(row)).rowcount)
            if done and run.status == "completed" and run.images:
                store.executemany(_UPSERT_IMAGE, [(run.id, i, url) for i, url in enumerate(run.images)])
            written.append(done)
    return written
