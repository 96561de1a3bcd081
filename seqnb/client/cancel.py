"""Cancelling runs: one cancel call per run, its outcome said on the run, never a silent failure.

A refusal (any 4xx) is ``not_cancellable`` with the service's words in ``run.note``; 5xx and transport errors are
retried by the transport, and raise once retries run out (the note says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from .. import errors
from ..api import protocol
from ..runs.run import RunCore, RunEvent

if TYPE_CHECKING:
    from ..api.transport import Transport
    from ..runs.poller import Poller

__all__ = ["cancel_each", "cancel_run"]

R = TypeVar("R", bound=RunCore)


async def cancel_run(transport: Transport, poller: Poller, run: RunCore) -> str:
    """Cancel a run that is not submitting; returns ``cancelled`` or ``not_cancellable``.

    The cancel goes out at once, even while a 429 slows the client down (``gate=False``).
    """
    if run.status == "created":
        run.transition("cancelled", detail="never sent", cancel_outcome="cancelled")
        return "cancelled"
    if run.status == "cancelled":
        return "cancelled"
    rid = protocol.request_id(run.request_id)
    if run.done or rid is None:
        run.cancel_outcome = "not_cancellable"  # its note keeps what it says about the run
        return "not_cancellable"
    try:
        body = await transport.call("POST", f"/requests/{rid}/cancel", request_id=rid, route="cancel", gate=False)
    except (errors.RateLimited, errors.ServerError, errors.TransportError) as exc:
        _say(run, f"cancel failed ({exc}); try again")
        raise
    except errors.APIError as exc:
        outcome = _not_cancellable(run, f"the service refused the cancel: {exc.message} ({exc.codes})")
        if isinstance(exc, errors.RequestNotFound):
            with contextlib.suppress(Exception):  # a look after the answer: its failure changes no outcome
                await poller.poll_once(run)
        return outcome
    except errors.SeqnbError as exc:
        _say(run, f"cancel failed ({exc}); try again")
        raise
    except Exception as exc:
        _say(run, f"cancel failed ({type(exc).__name__}: {exc}); try again")
        raise errors.TransportError(f"cancel interrupted: {type(exc).__name__}: {exc}") from exc
    answer = protocol.read_cancel(body)
    if answer.outcome == "cancelled":
        if not run.transition("cancelled", detail="cancelled", cancel_outcome="cancelled") and not run.done:
            run.cancel_outcome = "cancelled"
            _say(run, f"the service says cancelled while seqnb saw {run.status}; seqnb keeps watching the run")
        return "cancelled"
    if answer.outcome is None:
        why = f"{answer.problem}; seqnb keeps watching the run"
    else:
        why = "the service says it is already running: it cannot be cancelled and will be charged"
    if answer.outcome is None or (answer.status is not None and answer.status != run.status):
        with contextlib.suppress(Exception):  # a look after the answer: its failure changes no outcome
            await poller.poll_once(run)
    return _not_cancellable(run, why)


async def cancel_each(runs: Iterable[R], cancel: Callable[[R], Awaitable[str]]) -> dict[str, str]:
    """Cancel every run still queued (or not yet sent) with ``cancel``; returns outcome per run id."""
    targets = [r for r in runs if r.cancellable]
    outcomes = await asyncio.gather(*(cancel(r) for r in targets), return_exceptions=True)
    return {r.id: (o if isinstance(o, str) else f"error: {o}") for r, o in zip(targets, outcomes, strict=True)}


def _not_cancellable(run: RunCore, why: str) -> str:
    run.cancel_outcome = "not_cancellable"
    _say(run, why, "not_cancellable")
    return "not_cancellable"


def _say(run: RunCore, note: str, detail: str = "cancel") -> None:
    run.say("cancel", note)
    run.emit(RunEvent(run, run.status, run.status, time.time(), detail))
