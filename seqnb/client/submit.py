"""What a failed submit means for its run: refused (nothing charged), certainly not sent, or in doubt.

I/O-free: ``AsyncClient.send`` asks ``submit_failure`` which state the run goes to and what its
error tells the user. A run in doubt (its POST may have reached the service) is never resubmitted.
"""

from __future__ import annotations

from typing import Any

from .. import errors
from ..api import protocol
from ..api.protocol import RunStatus
from ..runs.run import RunCore

__all__ = ["BALANCE_REFUSED", "IN_DOUBT", "REJECTED", "submit_failure"]

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
