"""Runs: one request's life, as an explicit state machine that tells its subscribers every change.

    created ──► submitting ──► in_queue ──► in_progress ──► completed
                    │              │  └──────────┬────────► failed
                    │              └──► cancelled │
                    ├──► failed    (rejected: input, auth, balance; certainly not charged)
                    └──► unknown   (the submit may or may not have reached the service)
    in_queue / in_progress ──► lost   (the service no longer knows the request id)

``RunCore`` is the whole state, I/O-free (fields, transitions, events): the poller, the ledger
and the gallery work on it. The client layer adds the calls (``seqnb.client.core.AsyncRun``, and its
synchronous mirror ``seqnb.client.sync.Run``).
"""

from __future__ import annotations

import functools
import logging
import time
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ..api.protocol import RunStatus
from ..model.request import Request

__all__ = [
    "ACTIVE",
    "CENT",
    "TERMINAL",
    "NoteSource",
    "RunCore",
    "RunEvent",
    "charge_differs",
    "expected_charge",
    "usd_estimate",
]

log = logging.getLogger("seqnb.runs")

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled", "unknown", "lost"})
ACTIVE: frozenset[str] = frozenset({"in_queue", "in_progress"})
"""States the service is working on: the poller watches these."""
CENT = Decimal("0.01")
"""A charge further than this from what seqnb expected is flagged (``RunCore.cost_differs``)."""

_ALLOWED: dict[str, frozenset[str]] = {
    "created": frozenset({"submitting", "failed", "cancelled"}),
    "submitting": frozenset({"in_queue", "in_progress", "completed", "failed", "cancelled", "unknown"}),
    "in_queue": frozenset({"in_progress", "completed", "failed", "cancelled", "lost"}),
    "in_progress": frozenset({"completed", "failed", "lost"}),
    "unknown": frozenset({"in_queue", "in_progress", "completed", "failed", "cancelled", "lost"}),
}


def expected_charge(request: Request, status: str) -> Decimal:
    """What seqnb expects a run in ``status`` to be charged: its estimate once completed, nothing otherwise."""
    return request.cost().amount if status == "completed" else Decimal(0)


def usd_estimate(request: Request) -> Decimal | None:
    """A request's estimate in USD, or None (another currency, or an attached job that told too little to estimate)."""
    try:
        cost = request.cost()
    except ValueError:
        return None
    return cost.amount if cost.currency == "USD" else None


def charge_differs(request: Request, status: str, cost: Decimal | None) -> bool | None:
    """Whether ``cost`` (USD) is more than a cent from the expected charge; None when either cannot be compared."""
    if cost is None or usd_estimate(request) is None:
        return None
    return abs(cost - expected_charge(request, status)) > CENT


@dataclass(frozen=True)
class RunEvent:
    """One change of a run, as subscribers receive it."""

    run: RunCore
    old: RunStatus
    new: RunStatus
    at: float
    """Wall-clock time of the change."""
    detail: str = ""


Subscriber = Callable[[RunEvent], None]

NoteSource = Literal["restored", "attach", "result", "charge", "poll", "cancel", "watch", "ledger"]
"""Who notes something on a run: its note in the ledger (read back, or written there by ``Ledger.annotate``), what
an attach did not know, the result (a short batch), the charge (differs from the estimate, or unreadable), a poll
problem, a cancel, the watch (deadline, taken over), a ledger write that failed."""

_NOTE_ORDER: tuple[NoteSource, ...] = typing.get_args(NoteSource)


@dataclass(eq=False)
class RunCore:
    """What seqnb knows of one run. No I/O here."""

    request: Request
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    request_id: str | None = None
    status: RunStatus = "created"
    queue_position: int | None = None
    error: str | None = None
    images: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    server_created_at: str | None = None
    server_finished_at: str | None = None
    sweep_id: str | None = None
    parent_id: str | None = None
    label: str = ""
    """What tells it apart from the runs around it (``seqnb.model.labels``): its sweep's differing words and values,
    or its model and prompt; computed once, when it is made, and kept in the ledger."""
    cancel_outcome: str | None = None
    cost: Decimal | None = None
    """What the service said the run cost, in USD, once it ended; None: it did not say (spend counts the estimate)."""
    cost_source: str | None = None
    """Who said what it cost: ``runcomfy`` or ``emulator`` (None while the cost is unknown)."""
    service: str | None = None
    """The base URL of the service the client that owns it talks to: its images may come from that host although
    it is not public (the emulator serves its own). None for a run rebuilt from a ledger row until a client adopts it."""
    notes: dict[NoteSource, str] = field(default_factory=dict)
    """What seqnb has to say about this run, by who says it (see ``NoteSource``); ``note`` joins them."""
    watching: bool = False
    _subscribers: list[Subscriber] = field(default_factory=list, repr=False)

    @property
    def model(self) -> str:
        return self.request.model.id

    @property
    def note(self) -> str:
        """Every note on the run, in the order of ``NoteSource``, joined by "; "."""
        return "; ".join(self.notes[s] for s in _NOTE_ORDER if self.notes.get(s))

    def say(self, source: NoteSource, text: str) -> None:
        """Set what ``source`` has to say about this run; an empty ``text`` takes it back."""
        if text:
            self.notes[source] = text
        else:
            self.notes.pop(source, None)

    @property
    def requested(self) -> int:
        return self.kind[1]

    @functools.cached_property
    def kind(self) -> tuple[str, int]:
        """(model id, requested count): runs of one kind take about as long."""
        return (self.request.model.id, self.request.count)

    @property
    def returned(self) -> int | None:
        """Images the service returned (None until completed)."""
        return len(self.images) if self.status == "completed" else None

    @property
    def short(self) -> bool:
        """Completed with fewer images than asked (the model may do that; you pay for the count asked)."""
        return self.status == "completed" and len(self.images) < self.requested

    @property
    def expected_cost(self) -> Decimal:
        """What seqnb expects the service to charge (see ``expected_charge``)."""
        return expected_charge(self.request, self.status)

    @property
    def cost_differs(self) -> bool | None:
        """Whether the charge is more than a cent from ``expected_cost``; None while the charge (or a USD estimate) is unknown."""
        return charge_differs(self.request, self.status, self.cost)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def cancellable(self) -> bool:
        """Whether a cancel can still work: only while queued (or not yet sent)."""
        return self.status in ("created", "submitting", "in_queue")

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def emit(self, event: RunEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a subscriber must never break the poller
                log.exception("run subscriber failed on %s -> %s", event.old, event.new)

    def transition(
        self, new: RunStatus, detail: str = "", notes: dict[NoteSource, str] | None = None, **info: Any
    ) -> bool:
        """Move to ``new`` if the state machine allows it, then record ``info`` and ``notes`` and tell subscribers;
        returns whether it moved.

        A move the state machine refuses writes nothing: a late ``failed`` cannot overwrite a completed run.
        """
        old = self.status
        if new != old and new not in _ALLOWED.get(old, frozenset()):
            log.debug("ignored %s -> %s for run %s", old, new, self.id)
            return False
        for key, value in info.items():
            setattr(self, key, value)
        for source, text in (notes or {}).items():
            self.say(source, text)
        if notes:
            info["notes"] = notes
        if new == old:
            if info:
                self.emit(RunEvent(self, old, new, time.time(), detail))
            return False
        now = time.time()
        self.status = new
        if new == "in_progress" and self.started_at is None:
            self.started_at = now
        if new in TERMINAL and self.finished_at is None:
            self.finished_at = now
        if new != "in_queue":
            self.queue_position = None
        self.emit(RunEvent(self, old, new, now, detail))
        return True

    @property
    def queue_text(self) -> str:
        """Where a queued run stands, the one way seqnb says it everywhere: ``"3 ahead"`` (the service's
        ``queue_position``, which counts the jobs ahead), ``"next"`` at 0; empty when not queued or unknown."""
        if self.status != "in_queue" or self.queue_position is None:
            return ""
        return "next" if self.queue_position == 0 else f"{self.queue_position} ahead"

    def summary(self) -> str:
        parts = [f"{self.request.model.short_name}", self.status]
        if self.queue_text:
            parts.append(self.queue_text)
        if self.status == "completed":
            parts.append(f"{len(self.images)}/{self.requested} images")
        if self.error:
            parts.append(self.error)
        return " ".join(parts)
