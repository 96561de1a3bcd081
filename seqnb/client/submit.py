"""Before and after a submit: what a request must pass, what it would repeat, and what a failed submit means.

``live_validate``: the built-in spec's rules, or the catalog's live schema's. ``duplicate_of``:
an identical request in flight, in doubt or done with the same seed (I/O-free). ``submit_failure``
(I/O-free): which state a run goes to when its submit fails, and what its error tells the user; a
run in doubt (its POST may have reached the service) is never resubmitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import errors
from ..api import protocol
from ..api.protocol import RunStatus
from ..model.request import Request
from ..model.validation import Report, validate_payload
from ..runs.run import RunCore

if TYPE_CHECKING:
    from .core import AsyncClient

__all__ = ["BALANCE_REFUSED", "IN_DOUBT", "REJECTED", "duplicate_of", "live_validate", "submit_failure"]

REJECTED = (
    errors.InputRejected,
    errors.AuthError,
    errors.PermissionDenied,
    errors.ModelNotFound,
    errors.InsufficientBalance,
    errors.NotFound,
    errors.RequestRefused,
)
"""Rejections that mean the service certainly made no job (nothing charged)."""

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


def live_validate(client: AsyncClient, request: Request) -> Report:
    """Every problem of a request: by the built-in spec or, with ``client.live_schema``, by the catalog's live schema.

    The live schema replaces only the schema rules (fields, types, enums, limits, required);
    seqnb's own checks (the prompt's image count, the seed range) still apply. When the live
    schema is unknown or unusable, the built-in spec is used (with a warning saying why).
    """
    hosts = client.references.http_hosts()
    builtin = request.validate(http_hosts=hosts)
    if not client.live_schema:
        return builtin
    client.catalog.load([request.model.id])
    live = client.catalog.live_spec(request.model)
    if live is None:
        return builtin
    payload = request.payload()
    unset = tuple(p for p in builtin.problems if p.code == "unknown_field" and p.wire not in payload)
    report = validate_payload(live, payload, http_hosts=hosts)
    return Report(report.model, unset + report.problems, report.checked)


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
