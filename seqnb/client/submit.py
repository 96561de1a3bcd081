"""What a submit means, I/O-free: which runs it would repeat, what its failure says, which plan or runs a call names.

``submit_failure``: which state a run goes to when its submit fails, and what its error tells the
user; a run in doubt (its POST may have reached the service) is never resubmitted. ``duplicate_of``:
an identical request in flight, in doubt or done with the same seed. ``run_ids``, ``given_plan``
and ``promote_changes``: what a sweep or a promote was called with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import errors
from ..api import protocol
from ..api.protocol import RunStatus
from ..model.request import Request, match_size
from ..model.spec import models
from ..model.sweep import SweepPlan
from ..runs.run import RunCore

__all__ = [
    "BALANCE_REFUSED",
    "BEST",
    "FATAL",
    "IN_DOUBT",
    "REJECTED",
    "duplicate_of",
    "given_plan",
    "promote_changes",
    "run_ids",
    "submit_failure",
]

REJECTED = (errors.Refused, errors.AuthError, errors.ModelNotFound, errors.RequestNotFound)
"""Rejections that mean the service certainly made no job (nothing charged)."""

FATAL = (errors.AuthError, errors.PermissionDenied, errors.InsufficientBalance, errors.ModelNotFound)
"""After one of these the rest of a sweep would fail the same way: it stops sending."""

BALANCE_REFUSED = "insufficient balance"
"""The event detail of a run whose submit was refused for the balance (HTTP 402, error_code 400002)."""

IN_DOUBT = "Check your RunComfy requests before you submit it again, or you may pay twice"


def submit_failure(run: RunCore, payload: dict[str, Any], exc: BaseException) -> tuple[RunStatus, str, str]:
    """``(status, detail, error)`` for a run whose submit of ``payload`` raised ``exc``."""
    if isinstance(exc, errors.InsufficientBalance):
        return "failed", BALANCE_REFUSED, f"not accepted, not charged: {exc}"
    if isinstance(exc, REJECTED):
        return "failed", "rejected", f"not accepted, not charged: {exc}"
    if isinstance(exc, errors.ConnectError | errors.RateLimited):
        return "failed", "not sent", f"not sent: {exc}"
    if isinstance(exc, errors.Unsendable):
        return "failed", "not sent", f"not sent: {_unsendable(run, payload, exc)}"
    if isinstance(exc, errors.SeqnbError):
        return "unknown", "in doubt", f"the submit may or may not have reached the service ({exc}). {IN_DOUBT}"
    # cancelled, or something nothing foresaw: the POST may have left
    return (
        "unknown",
        "in doubt",
        f"the submit was interrupted ({type(exc).__name__}: {exc}); it may have reached the service. {IN_DOUBT}",
    )


def _unsendable(run: RunCore, payload: dict[str, Any], exc: errors.Unsendable) -> str:
    where = protocol.unsendable(payload)
    if where is None:
        return str(exc)
    field, position, char = where
    what = "the prompt" if field == run.request.model.prompt_field.wire else f"field {field!r}"
    return (
        f"{what} ({field!r}) holds a character that cannot be sent at position {position} "
        f"({char!r}, a lone surrogate): remove it and submit again"
    )


def duplicate_of(others: Iterable[RunCore], request: Request) -> str | None:
    """Why ``request`` repeats one of ``others`` (runs of the same request), or None: in doubt, in flight, or same seed."""
    for other in others:
        if other.status == "unknown":
            return f"run {other.id} with the same request is in doubt (its submit may have reached the service)"
        if not other.done:
            return f"run {other.id} with the same request is still {other.status}"
        if other.status == "completed" and request.seed is not None:
            return f"run {other.id} already completed with the same seed: expect the same images"
    return None


def run_ids(runs: Any) -> list[str]:
    """The run ids among ``runs``: runs of either client, run ids, a frame of runs (its ``id`` column or its index)."""
    if isinstance(runs, str | RunCore) or hasattr(runs, "aio"):  # one run
        runs = [runs]
    elif hasattr(runs, "columns"):  # a frame of ledger.runs() or ledger.ranking(), or one indexed by run id
        column = next((c for c in ("id", "run_id") if c in runs.columns), None)
        runs = list(runs[column]) if column else list(runs.index)
    ids: list[str] = []
    for item in runs:
        run_id = item if isinstance(item, str) else getattr(item, "id", None)
        if not isinstance(run_id, str) or not run_id:
            raise errors.SettingInvalid(
                f"runs: {item!r} is not a run; give runs, run ids, or a frame of runs (ledger.runs(verdict='picked'))"
            )
        if run_id not in ids:
            ids.append(run_id)
    return ids


def given_plan(args: tuple[Any, ...], kw: dict[str, Any]) -> SweepPlan | None:
    """The ``SweepPlan`` a sweep was called with, checked to be alone; None for a grid."""
    if not args or not isinstance(args[0], SweepPlan):
        return None
    if len(args) > 1 or kw:
        extra = ", ".join([*(repr(a) for a in args[1:]), *kw])
        raise errors.SettingInvalid(
            f"sweep(plan) takes the plan alone (and budget=, allow_over_balance=, concurrency=), not also {extra}"
        )
    return args[0]


def promote_changes(original: RunCore, changes: dict[str, Any]) -> Request | str:
    """The request a promote makes of ``original``: its request (prompt, model, seed) with the ``changes`` its model
    takes (``resolution="4K", optimize="standard"``: 4K on 4.5, standard on 4.0); or why none of them applies."""
    spec = original.request.model
    taken: dict[str, Any] = {}
    for key, value in changes.items():
        field = spec.role(key) or spec.field(key)
        if field is not None and field.role == "size" and isinstance(value, str):
            value = match_size(spec, value) or value
        if field is not None and (value is None or not field.enum or value in field.enum or not _elsewhere(key, value)):
            taken[key] = value  # a value no model takes (a typo) is kept: validation names the choices
    if changes and not taken:
        asked = ", ".join(f"{k}={v!r}" for k, v in changes.items())
        best = BEST.get(spec.id)
        instead = f" (its best: {', '.join(f'{k}={v!r}' for k, v in best.items())})" if best else ""
        return f"run {original.id} is {spec.short_name}, which takes no {asked}{instead}"
    return original.request.replace(**taken)


def _elsewhere(key: str, value: Any) -> bool:
    """Whether another model takes ``key=value`` (4.5's 4K): then a model without it is left out of a promote."""
    for spec in models():
        field = spec.role(key) or spec.field(key)
        if field is not None and (not field.enum or value in field.enum):
            return True
    return False


BEST: dict[str, dict[str, Any]] = {
    "bytedance/seedream-4-5/sequential": {"resolution": "4K"},
    "bytedance/seedream-4-5/edit-sequential": {"resolution": "4K"},
    "bytedance/seedream-4-0/sequential": {"optimize": "standard"},
    "bytedance/seedream-4-0/edit-sequential": {"optimize": "standard"},
}
"""What "full quality" means per model when a promote asks for it (4.0 has no 4K: its standard mode)."""
