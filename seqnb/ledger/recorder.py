"""What one client writes into a ledger: its session, and its runs' rows, write-or-refuse.

A new run's row is written before its submit may leave (``record`` raises ``LedgerError``, and
the client then sends nothing). Every later change is written as it happens; one that fails is
kept, retried on every later change and by ``flush``, and shown on the run (``run.notes["ledger"]``, joined into ``run.note``) and by
``Ledger.health()``, never lost or raised. A run another session took over (``Ledger.claim``) is
no longer written here, and no longer watched.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from ..errors import LedgerError
from ..runs.run import AsyncRun, RunCore, RunEvent

if TYPE_CHECKING:
    from ..api.backend import Backend
    from ..client.core import AsyncClient
    from ..model.sweep import SweepPlan
    from .facade import Ledger
    from .sessions import SessionInfo

__all__ = ["Recorder"]

log = logging.getLogger("seqnb.ledger")


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
