"""The ledger: every run in one database, pandas views over it, sessions that own the runs they watch.

The store is an SQLite file (WAL mode; the embedded default, nothing to install) or, for a team,
a PostgreSQL database: ``Ledger("postgresql://user@host/db")`` (``seqnb.ledger.stores.base`` holds the
little that differs). One row per run, one per image (``seqnb.ledger.schema``); DataFrames are
views (``seqnb.ledger.frames``, pandas loads on first use). Write-ahead means write-or-refuse: a
new run's row is written before its submit may leave, and if it cannot be written (disk full,
read-only or corrupt file, server gone, a value that does not fit) the submit does not leave and
the caller gets a ``LedgerError`` naming the cause. Later writes go in batches, and one that
fails is kept, retried and shown, never swallowed (``seqnb.ledger.recorder``).

Each client attached to a ledger is a *session* (a row in ``sessions``: user, host, pid, kernel,
machine and a heartbeat it renews; ``seqnb.ledger.sessions``); every run says which session
made it (``user``, ``host``, ``kernel`` in ``runs()``) and which one watches it now (``owner``).
``Client.resume`` takes over only runs whose session is gone (ended, its process dead on its own
machine, or its heartbeat stale, judged without comparing two clocks), by default only the
user's own (``scope="mine"``); a session whose run was taken over can no longer write it, stops
watching it, and never sends its submit (``seqnb.ledger.resume``). A run's image rows, as the
gallery fills them in, are kept and retried like its own row (``seqnb.ledger.image_rows``). A team budget
(``set_budget``, ``seqnb.ledger.budget``) is checked atomically before any run or sweep is
recorded, against the spend of everyone. The token is never stored: only the backend's kind and
base URL.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs.run import RunCore
from . import rankings
from .budget import TeamBudget
from .duels import record_duel, remove_duel
from .image_rows import UNSET, ImageRows, Score
from .marks import mark_rows, read_marks, reader, write_marks, writer
from .reads import LedgerReads
from .recorder import Recorder, run_row, write_rows
from .resume import RESUMABLE, Scope, children_of, claim_runs, restore_run, restore_runs
from .schema import migrate
from .sessions import HEARTBEAT_SECONDS, MISSED_BEATS, SessionInfo, SessionKeeper
from .stores import SqliteStore, Store, open_store

if TYPE_CHECKING:
    import pandas as pd

    from ..api.backend import Backend

__all__ = ["DEFAULT_LEDGER", "Ledger", "ledger_target"]

log = logging.getLogger("seqnb.ledger")

DEFAULT_LEDGER = "seqnb-ledger.sqlite"


def ledger_target(target: str | os.PathLike[str] | None, flag: str = "path") -> tuple[str, str]:
    """The ledger to open and the setting that chose it, for messages: ``target`` (given as ``flag``), else
    ``$SEQNB_LEDGER``, else ``DEFAULT_LEDGER`` ("the default ledger")."""
    if target:
        return os.fspath(target), flag
    if chosen := os.environ.get("SEQNB_LEDGER"):
        return chosen, "SEQNB_LEDGER"
    return DEFAULT_LEDGER, "the default ledger"


class Ledger(LedgerReads):
    """Every run in one database; ``Ledger()`` opens ``$SEQNB_LEDGER`` or ``./seqnb-ledger.sqlite``.

    ``target`` is a file path (SQLite) or a ``postgresql://user@host:port/db`` URL (a team's
    shared ledger; put the password in ``PGPASSWORD`` or ``~/.pgpass``, not in a notebook).
    ``budget`` stores a team budget in the ledger for everyone (see ``set_budget``).
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        budget: Decimal | str | float | None = None,
        currency: str = "USD",
    ) -> None:
        self.store: Store = open_store(*ledger_target(target))
        self.location = self.store.location
        """Where the runs are, fit to print: the file, or the database URL without its password."""
        self.path: Path | None = self.store.path if isinstance(self.store, SqliteStore) else None
        """The SQLite file (None for a database server)."""
        with self.store.guard("open"):
            migrate(self.store)
        self.keeper = SessionKeeper(self.store, heartbeat)
        """This process's sessions here (one per attached client), their heartbeat, which sessions are live."""
        self.team_budget = TeamBudget(self.store)
        """The budgets stored here, and the check of every run and sweep against them."""
        self.image_rows = ImageRows(self.store)
        """The runs' image rows as the gallery fills them in: written, or kept and retried until they are."""
        if budget is not None:
            self.set_budget(budget, currency)

    # --- storage -----------------------------------------------------------------------------

    @property
    def heartbeat(self) -> float:
        """How often this ledger's sessions say they are alive, in seconds."""
        return self.keeper.heartbeat

    @property
    def version(self) -> int:
        with self.store.guard("read"):
            return self.store.version()

    def close(self) -> None:
        """End this ledger's sessions (their runs may then be resumed elsewhere) and close its connections."""
        self.keeper.close()
        with contextlib.suppress(*self.store.errors):
            self.store.close()

    # --- sessions ----------------------------------------------------------------------------

    def open_session(self) -> SessionInfo:
        """Register a new session (one client attached here) and keep its heartbeat going."""
        return self.keeper.open()

    def end_session(self, session: str) -> None:
        """Mark a session ended: its runs in flight may be resumed by another session from now on."""
        self.keeper.end(session)

    def live_sessions(self) -> set[str]:
        """The sessions that are still alive: not ended, and on this machine with a live process or else beating
        (judged without comparing two clocks; see ``seqnb.ledger.sessions``)."""
        return self.keeper.live()

    # --- recording ---------------------------------------------------------------------------

    def recorder(
        self,
        backend: Backend,
        on_taken_over: Callable[[RunCore], None] | None = None,
        runs: Mapping[str, RunCore] | None = None,
    ) -> Recorder:
        """A new session here, and what records its runs (a client's: ``AsyncClient.use_ledger``).

        ``on_taken_over(run)``: called when another session has taken one of its runs over; ``runs``: the client's
        runs by id (``annotate`` writes a note onto the one still in flight, so that its later writes keep it).
        """
        recorder = Recorder(self, backend, self.open_session(), on_taken_over, runs)
        self.keeper.recorders.append(recorder)
        return recorder

    def record(self, run: RunCore, backend: Backend, owner: str | None = None, status: str | None = None) -> bool:
        """Write the run's row (with ``status`` instead of its own, if given); idempotent. Raises ``LedgerError``.

        A new run (status ``created``) is first checked against the team budget, if the ledger
        has one (``BudgetExceeded``). Returns False, writing nothing, when another session has
        taken the run over (``claim``): this session no longer owns it.
        """
        row = run_row(run, backend, owner, status or run.status, self.location)
        return self.write_rows([(run, row)])[0]

    def write_rows(self, rows: Sequence[tuple[RunCore, dict[str, Any]]]) -> list[bool]:
        """Write runs' rows (``recorder.run_row``) in one transaction, all or none (``writes.write_rows``)."""
        return write_rows(self.store, self.team_budget, rows)

    def committed(self, currency: str = "USD", backend: str = "runcomfy", *, exclude: str | None = None) -> Decimal:
        """Everyone's spend that counts against a budget: completed, in flight and in doubt runs of one backend kind."""
        return self.team_budget.committed(currency, backend, exclude=exclude)

    def set_budget(self, amount: Decimal | str | float | None, currency: str = "USD") -> None:
        """Store a budget for everyone writing to this ledger (``None`` removes it).

        From then on no run or sweep is recorded, so none is sent, if the committed spend of
        everyone (completed, in flight and in doubt runs of the same backend kind: RunComfy's
        spend, or the emulator's simulated spend) plus its estimate would go over it.
        """
        self.team_budget.set(amount, currency)

    def budget(self, currency: str = "USD") -> Decimal | None:
        """The team budget stored in this ledger for ``currency``, if any."""
        return self.team_budget.amount(currency)

    def record_images(self, run: RunCore, images: Mapping[int, Mapping[str, Any]], consistency: Score = UNSET) -> None:
        """Record what the gallery made of a run's images (frame index -> its ``url``, ``path``, ``width``, ``height``,
        ``bytes``, ``sha256``, ``state``) and, when given, the series' ``consistency`` score (see ``seqnb.consistency``).

        Never raises for the ledger: a write that fails is kept, shown on the run, reported by ``health()`` and
        retried on every later change, by every read and by ``flush()`` (``seqnb.ledger.image_rows``).
        """
        self.image_rows.record(run, images, consistency)

    def annotate(self, run_id: str, *, note: str | None = None, tags: Iterable[str] | None = None) -> None:
        """Attach a free-text note to a run, and make its tags (yours, as marks) exactly ``tags``.

        The note replaces the run's note in the ledger. On a run of a client of this ledger (in flight or not), it
        becomes the run's own (``run.note`` starts with it, then what seqnb says of the run), so its later writes keep it.
        """
        if note is not None and not any(r.annotate(run_id, note) for r in self.keeper.recorders):
            with self.store.guard(f"annotate run {run_id}"):
                self.store.execute("UPDATE runs SET note=? WHERE id=?", (note, run_id))
        if tags is not None:
            wanted, now = set(tags), set(self.marks_of([run_id])[run_id].tags)
            if wanted != now:
                self.mark(run_id, tags=sorted(wanted - now), untag=sorted(now - wanted))

    # --- marks ---------------------------------------------------------------------------------

    def mark(
        self,
        run_id: str,
        *,
        frame: int | None = None,
        rating: int | None = None,
        verdict: str | None = None,
        tags: Iterable[str] = (),
        untag: Iterable[str] = (),
        comment: str | None = None,
        by: str | None = None,
    ) -> None:
        """Judge a run, written at once: ``rating`` 1-5 (0 clears; with ``frame``, a frame's), ``verdict`` ``"picked"``/
        ``"rejected"`` (``"none"`` clears), tags to add or remove, a comment ('' clears); by you unless ``by``. See ``.marks``.
        """
        rows = mark_rows(frame=frame, rating=rating, verdict=verdict, tags=tags, untag=untag, comment=comment)
        write_marks(self.store, run_id, rows, writer(by))

    def marks(self, run_ids: Iterable[str] | None = None, *, by: str | None = None) -> pd.DataFrame:
        """The mark rows (of some runs, or all) in the order written; yours, or ``by="alice"``'s, or ``by="*"`` everyone's."""
        from .frames import marks_frame

        return marks_frame(*read_marks(self.store, run_ids, reader(by)))

    def record_score(self, run_id: str, name: str, score: float) -> None:
        """Record a user scorer's score of a series: a ``score`` mark by ``scorer:<name>`` (``marks(by=...)`` reads it)."""
        write_marks(self.store, run_id, [(None, "score", repr(float(score)))], f"scorer:{name}")

    def health(self) -> str | None:
        """None when every run and image row this ledger was told about is written; else what is not, and why."""
        unsaved = [(r, run_id) for r in self.keeper.recorders for run_id in r.unsaved]
        said = []
        if unsaved:
            error = next((r.last_error for r, _ in unsaved if r.last_error is not None), None)
            said.append(f"{len(unsaved)} run(s) not yet written to the ledger (retrying): {error}")
        if images := len(self.image_rows.waiting):
            said.append(f"the image rows of {images} run(s) not yet written (retrying): {self.image_rows.last_error}")
        return "; ".join(said) or None

    def flush(self) -> None:
        """Write again every change a failed write left behind; raises ``LedgerError`` if it still fails."""
        for recorder in self.keeper.recorders:
            recorder.flush(raise_errors=True)
        self.image_rows.flush(raise_errors=True)

    # --- duels (``seqnb.ledger.duels``, ``seqnb.ledger.rankings``) ----------------------------------

    def record_duel(self, left: str, right: str, outcome: str, *, blind: bool = True, by: str | None = None) -> int:
        """Record a choice between two runs (``outcome``: ``"left"``, ``"right"`` or ``"tie"``), by you; its duel id."""
        return record_duel(self.store, left, right, outcome, blind=blind, by=writer(by))

    def remove_duel(self, duel_id: int, *, by: str | None = None) -> None:
        """Take back one of your duels (an undo): its row is deleted."""
        remove_duel(self.store, duel_id, writer(by))

    duels, ranking, effects, plot_ranking = rankings.duels, rankings.ranking, rankings.effects, rankings.plot_ranking

    # --- bringing runs back ----------------------------------------------------------------

    def pending(self) -> pd.DataFrame:
        """Runs not yet ended (what a resume could pick up, whoever watches them now)."""
        return self.runs(status=list(RESUMABLE))

    def restore(self, run_id: str) -> RunCore:
        """A run rebuilt from its row (belonging to no client: ``client.resume`` adopts runs)."""
        self.settle()
        return restore_run(self.store, run_id)

    def restore_many(self, run_ids: Sequence[str]) -> list[RunCore]:
        """Runs rebuilt from their rows in a few queries, in the order given (a row that cannot be read is left out)."""
        self.settle()
        return restore_runs(self.store, run_ids)

    def children(self, run_id: str) -> list[RunCore]:
        """The runs made from ``run_id`` (reruns and promotes), rebuilt from their rows, oldest first."""
        self.settle()
        return [restore_run(self.store, child) for child in children_of(self.store, run_id)]

    def claim(self, session: str, scope: Scope = "mine") -> list[RunCore]:
        """Take over the runs not yet ended whose session is gone; returns them rebuilt, now owned by ``session``.

        A run another live session owns is left alone (it is being watched, or its submit is
        being sent). ``scope="mine"`` (the default) takes only runs last watched by a session
        of the same user (on any host: a kernel restarted on another JupyterHub pod is still
        you), and runs that no session ever owned; ``scope="team"`` takes anyone's. The claim
        is atomic (one at a time, across processes and hosts), so two resuming sessions never
        both take one run; the session that lost a run can no longer write it.
        """
        self.settle()
        taken, left = claim_runs(self.store, session, scope, self.keeper.live)
        unsure = dict(self.keeper.unsure)
        if waiting := [owner for owner in left if owner in unsure]:
            wait = max(unsure[owner] for owner in waiting)
            log.warning(
                "%d run(s) not taken over: their session(s) run on another machine, and on an SQLite ledger (whose "
                "clock is each writer's own) seqnb takes runs only from a session it has watched stay silent for "
                "%d heartbeats; if those sessions are gone, resume again in %.0f s",
                len(waiting), MISSED_BEATS, wait,
            )  # fmt: skip
        return [self.restore(run_id) for run_id in taken]

    def __repr__(self) -> str:
        return f"<seqnb.Ledger {self.location}>"
