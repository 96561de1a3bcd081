"""What one client writes into a ledger: its session, and its runs' rows, write-or-refuse.

A new run's row is written before its submit may leave (``record`` raises ``LedgerError``, and
the client then sends nothing). Every later change is written as it happens; one that fails is
kept, retried on every later change and by ``flush``, and shown on the run (``run.notes["ledger"]``, joined into ``run.note``) and by
``Ledger.health()``, never lost or raised. A run another session took over (``Ledger.claim``) is
no longer written here, and no longer watched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import LedgerError
from ..model.seeds import SEED_HINT
from ..runs.run import AsyncRun, RunCore, RunEvent

if TYPE_CHECKING:
    from ..api.backend import Backend
    from ..client.core import AsyncClient
    from ..model.sweep import SweepPlan
    from .facade import Ledger
    from .sessions import SessionInfo

__all__ = ["Recorder", "run_row"]

log = logging.getLogger("seqnb.ledger")
_INT64 = range(-(2**63), 2**63)


class Recorder:
    """What one client writes into a ledger: its session, and its runs' rows (see ``Ledger.attach``)."""

    def __init__(
        self, ledger: Ledger, backend: Backend, session: SessionInfo, client: AsyncClient | None = None
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.session = session
        self.client = client
        self.unsaved: dict[str, RunCore] = {}
        """Runs whose latest change could not be written yet (retried on every later change and by ``flush``)."""
        self.last_error: LedgerError | None = None
        self.ended = False

    def record(self, run: RunCore, status: str | None = None) -> None:
        """Write a run's row now; raises ``LedgerError`` (the caller must then not send its submit)."""
        if not self.ledger.record(run, self.backend, self.session.id, status):
            self._lost(run)

    def reserve(self, plan: SweepPlan) -> contextlib.AbstractContextManager[None]:
        """Record a sweep's runs all or none, within the team budget if the ledger has one (``Ledger.reserve``)."""
        return self.ledger.reserve(plan, self.backend)

    def _lost(self, run: RunCore) -> None:
        """Another session took this run over (this one was taken for gone): stop watching it here."""
        run.say("watch", "taken over by another session, which watches it now; this kernel stopped watching it")
        if self.client is not None and isinstance(run, AsyncRun):
            self.client.poller.unwatch(run)

    def on_event(self, event: RunEvent) -> None:
        """Write every change after the submit; a failure is kept, retried and shown, never lost or raised."""
        if event.detail == "created" or (event.new == "submitting" and event.old == "created"):
            return  # written, or refused, by the client itself before anything may leave
        self.unsaved[event.run.id] = event.run
        self.flush()

    def flush(self, raise_errors: bool = False) -> None:
        """Write again every run whose last write failed; ``raise_errors``: raise the ``LedgerError`` if one still does."""
        for run_id, run in list(self.unsaved.items()):
            try:
                self.record(run)
            except LedgerError as exc:
                if self.last_error is None or str(exc) != str(self.last_error):
                    log.error("%s (seqnb keeps it and retries on the next change)", exc)
                self.last_error = exc
                run.say("ledger", f"NOT YET IN THE LEDGER ({exc}); seqnb retries on every change")
                if raise_errors:
                    raise
                return
            del self.unsaved[run_id]
            run.say("ledger", "")
        self.last_error = None

    def end(self) -> None:
        """End this session: its runs in flight may be resumed by another session from now on."""
        if self.ended:
            return
        self.flush()
        self.ended = True
        self.ledger.end_session(self.session.id)
        if self in self.ledger.keeper.recorders:
            self.ledger.keeper.recorders.remove(self)


def run_row(run: RunCore, backend: Backend, owner: str | None, state: str, where: str) -> dict[str, Any]:
    """A run's row by column name (``schema.run_values`` orders it); ``LedgerError`` for a value the store cannot hold."""
    request = run.request
    resolved = request.resolved()
    seed = request.sent_seed  # the seed sent; the model's default goes apart, when none was sent
    default_seed = resolved.get("seed") if seed is None else None
    if isinstance(seed, int) and seed not in _INT64:
        raise LedgerError(
            f"ledger {where}: cannot record run {run.id}: seed {seed} does not fit a 64-bit integer; " + SEED_HINT
        )
    kept = ("model", "prompt", "seed", "size", "count", "references", "options")
    options = {**{k: v for k, v in resolved.items() if k not in kept}, **resolved.get("options", {})}  # one flat dict
    cost = request.cost()
    return {
        "id": run.id,
        "request_id": run.request_id,
        "backend": backend.kind,
        "base_url": backend.base_url,
        "model": run.model,
        "prompt": request.prompt,
        "seed": seed,
        "size": resolved.get("size"),
        "requested": run.requested,
        "returned": run.returned,
        "options": json.dumps(options, sort_keys=True, default=str),
        "payload": json.dumps(request.payload(), sort_keys=True, ensure_ascii=False),
        "status": state,
        "error": run.error,
        "created_at": run.created_at,
        "submitted_at": run.submitted_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "server_created_at": run.server_created_at,
        "server_finished_at": run.server_finished_at,
        "est_cost": str(cost.amount),
        "currency": cost.currency,
        "sweep_id": run.sweep_id,
        "updated_at": time.time(),
        "parent_id": run.parent_id,
        "note": run.note,
        "session": owner,
        "owner": owner,
        "default_seed": default_seed,
        "cost": None if run.cost is None else str(run.cost),
        "cost_source": run.cost_source,
        "est_source": cost.source,
        "cost_differs": None if (differs := run.cost_differs) is None else int(differs),
        "reference_urls": json.dumps(list(request.references)) if request.references else None,
    }
