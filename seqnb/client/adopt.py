"""Runs a client takes in from elsewhere: resumed from a ledger, attached by request id, rerun from a record.

Plain functions over an ``AsyncClient``'s public core (``prepare``, ``adopt``, ``watch``, its
recorder); the client's ``resume``, ``prepare_attach`` and ``prepare_rerun`` delegate here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from .. import errors
from ..model.request import Request
from ..model.spec import ModelSpec
from ..runs.run import AsyncRun, RunCore, RunEvent

if TYPE_CHECKING:
    from ..ledger.facade import Ledger
    from .core import AsyncClient

__all__ = ["REQUEST_ID", "ledger_for", "prepare_attach", "prepare_rerun", "resume"]

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What a request id may look like before it goes into a URL path (RunComfy's are UUIDs)."""


def resume(client: AsyncClient, ledger: Ledger | None, scope: Literal["mine", "team"]) -> list[AsyncRun]:
    """Adopt the runs of ``ledger`` (default: the client's) no live session owns; watch again those still in flight.

    ``scope="mine"``: only runs of your own (same user) sessions; ``"team"``: anyone's (see ``Ledger.claim``).
    Queued and running runs are watched again (an id the service no longer knows becomes
    ``lost``); runs whose submit was in flight become ``unknown``, never resubmitted; runs
    written but never sent become ``failed`` ("not sent"). Returns the runs watched again.
    """
    store = ledger_for(client, ledger)
    assert client.recorder is not None
    known = {run.id for run in client.runs()}
    resumed: list[AsyncRun] = []
    for restored in store.claim(client.recorder.session.id, scope):  # only runs no live session owns
        if restored.id in known:
            continue  # already this client's: nothing to adopt twice
        run = client.adopt(restored)  # its changes are recorded from here on
        known.add(run.id)
        if run.status == "created":  # written, never sent: nothing to watch, nothing charged
            run.transition("failed", error="not sent: the session ended before its submit; rerun it")
        elif run.status == "submitting":
            run.transition(
                "unknown",
                error="the session ended while its submit was in flight: it may or may not have reached "
                "the service. Check your RunComfy requests before you submit it again",
            )
        else:
            client.watch(run)
            resumed.append(run)
    return resumed


def prepare_attach(
    client: AsyncClient, request_id: str, model: str | ModelSpec, prompt: str | None, known: dict[str, Any]
) -> AsyncRun:
    """Adopt a job submitted elsewhere (RunComfy's CLI or playground), recorded before it is watched.

    ``known``: whatever is known of its request (``count=``, ``size=``, ``seed=``, wire fields);
    the rest stays unknown (the estimate assumes the model's default count). Raises
    ``SettingInvalid`` for a malformed request id, ``LedgerError`` when the ledger cannot record it.
    """
    rid = request_id.strip() if isinstance(request_id, str) else ""
    if not REQUEST_ID.fullmatch(rid):
        raise errors.SettingInvalid(
            f"request_id {request_id!r} is not a RunComfy request id: give the id the service answered "
            "(letters, digits, '-', '_', '.' or ':', at most 128 characters), e.g. from `runcomfy` or the playground"
        )
    for run in client.runs():
        if run.request_id == rid:
            return run  # attached (or submitted) here already
    request = client.money.priced(Request(model, prompt, **known))
    unknown = [] if prompt is not None else ["prompt"]
    if "count" not in known and request.model.count_field.wire not in known:
        unknown.append(f"count (estimated at {request.count})")
    note = "attached: submitted outside seqnb" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
    run = AsyncRun(request=request, request_id=rid, status="in_queue", notes={"attach": note}).bind(client)
    if unknown:
        run.subscribe(_AttachedNote(note))  # before the ledger's and the gallery's: they record the note it sets
    if client.recorder is not None:
        client.recorder.record(run)  # write-or-refuse: a run the ledger cannot hold is not attached
    client.adopt(run)
    run.emit(RunEvent(run, run.status, run.status, run.created_at, "created"))
    return run


def prepare_rerun(client: AsyncClient, run: RunCore | Any | str, changes: dict[str, Any]) -> AsyncRun:
    """A new prepared run with a recorded run's request and ``changes``, linked to it as its parent."""
    run_id = run if isinstance(run, str) else str(run.id)
    try:
        parent = client.run(run_id)
    except KeyError:
        parent = ledger_for(client, None).restore(run_id)
    return client.prepare(parent.request.replace(**changes), parent_id=parent.id, sweep_id=parent.sweep_id)


def ledger_for(client: AsyncClient, ledger: Ledger | None) -> Ledger:
    """``ledger`` attached to the client (attached now if it was not), else the client's own; ``LedgerError`` if none."""
    if ledger is not None:
        if ledger is not client.ledger:
            ledger.attach(client)
        return ledger
    if client.ledger is None:
        raise errors.LedgerError("this client has no ledger: pass one, or use seqnb.connect() (it attaches one)")
    return client.ledger


class _AttachedNote:
    """Keeps an attached run's note honest: what was not known stays said, and a short-batch note that assumed a count is replaced."""

    def __init__(self, note: str) -> None:
        self.note = note

    def __call__(self, event: RunEvent) -> None:
        run = event.run
        if event.new == "completed":
            run.say("attach", f"{self.note}; the service returned {len(run.images)} image(s)")
            run.say("result", "")  # its count was a guess, so a short-batch note would be too
