"""Every error seqnb raises, each saying what to do next. None of them ever carries the token.

The names a notebook catches (``seqnb.<Name>``) are in capitals below; the others are finer
kinds of them, importable from ``seqnb.errors``.

SeqnbError
├── RequestInvalid        invalid before sending: the request breaks the model's rules; nothing was sent (.report)
│   └── SweepInvalid          some requests of a sweep (or a promote) break them (.plan)
├── Unsendable            the request cannot be encoded (a lone surrogate); it never left (.field)
├── SettingInvalid        a setting or argument has a bad value (also a ValueError)
├── NotFound              no such thing: a model id or alias, a request id (also a LookupError)
│   ├── UnknownModelError     no model seqnb knows has that id or alias (also a KeyError)
│   ├── ModelNotFound         the service knows no such model (error_code 400001, or 404 on submit; also an APIError)
│   └── RequestNotFound       the service no longer knows the request id (404, error_code 404001; also an APIError)
├── BudgetExceeded        a sweep would cost more than its budget; nothing was sent
├── LedgerError           the ledger cannot record or read (disk full, read-only, corrupt, value out of range)
│   └── RunTakenOver          another session took the run over before its submit left: not sent from here
├── ImageRefused          an image URL gave nothing usable (.reason); the run's other images are kept
├── APIError              the service answered with an error (.status_code, .error_code, .request_id)
│   ├── AuthError             401/403, error_code 400004: token missing, wrong or expired
│   ├── Refused               the service refused the request and charged nothing (another 4xx, a 200 with an error_code)
│   │   ├── InputRejected         400/422: the input does not match the service's schema (.fields)
│   │   ├── InsufficientBalance   HTTP 402, error_code 400002: add funds on RunComfy
│   │   └── PermissionDenied      error_code 403001: the request belongs to another account (not a token problem)
│   ├── RateLimited           429 (.retry_after seconds); seqnb retries what it safely can
│   └── ServerError           5xx, or an error_code the client does not know
├── TransportError        no complete answer from the service (.maybe_sent: the request may have arrived)
│   ├── ConnectError          the connection was never made: the request certainly did not arrive
│   └── CallTimeout           one call got no answer within its deadline (it may have arrived)
└── WaitTimeout           seqnb stopped waiting (for a run, a sweep, a sync call); the runs go on (also a TimeoutError)

SeqnbWarning (a UserWarning): DuplicateSubmitWarning (an identical request again), BalanceUnchecked (a sweep
sent without its balance check), CatalogWarning and SchemaDriftWarning (the catalog could not be used as is).

Old names kept for one release (a ``DeprecationWarning`` names the new one): ``Timeout`` is
``WaitTimeout``, ``RequestRefused`` is ``Refused``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Protocol


class Problems(Protocol):
    """What ``RequestInvalid`` needs of a validation report (``seqnb.model.validation.Report``)."""

    @property
    def model(self) -> str: ...

    @property
    def errors(self) -> Sequence[object]: ...


class PlanProblems(Protocol):
    """What ``SweepInvalid`` needs of a plan (``seqnb.model.sweep.SweepPlan``)."""

    @property
    def kind(self) -> str: ...

    @property
    def errors(self) -> Sequence[tuple[int, object]]: ...

    def name_of(self, index: int) -> str: ...


__all__ = [
    "APIError",
    "AuthError",
    "BudgetExceeded",
    "CallTimeout",
    "ConnectError",
    "ImageRefused",
    "InputRejected",
    "InsufficientBalance",
    "LedgerError",
    "ModelNotFound",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Refused",
    "RequestInvalid",
    "RequestNotFound",
    "RunTakenOver",
    "SeqnbError",
    "SeqnbWarning",
    "ServerError",
    "SettingInvalid",
    "SweepInvalid",
    "TransportError",
    "UnknownModelError",
    "Unsendable",
    "WaitTimeout",
    "user_stacklevel",
]


class SeqnbError(Exception):
    """Base of every seqnb error."""


class SeqnbWarning(UserWarning):
    """Base of every seqnb warning: something worth knowing that did not stop anything."""


class RequestInvalid(SeqnbError, ValueError):
    """The request breaks the model's rules; it was not sent."""

    def __init__(self, report: Problems) -> None:
        self.report = report
        lines = "\n".join(f"  - {p}" for p in report.errors)
        super().__init__(f"request for {report.model} not sent, fix these first:\n{lines}")


class SweepInvalid(RequestInvalid):
    """Some requests of a sweep (or a promote) break the rules; nothing was sent."""

    def __init__(self, plan: PlanProblems, report: Problems) -> None:
        self.plan = plan
        self.report = report
        lines = "\n".join(f"  - {plan.name_of(i)}: {p}" for i, p in plan.errors[:20])
        more = f"\n  ... and {len(plan.errors) - 20} more" if len(plan.errors) > 20 else ""
        Exception.__init__(self, f"{plan.kind} not sent: {len(plan.errors)} problem(s)\n{lines}{more}")


class NotFound(SeqnbError, LookupError):
    """No such thing: a model id or alias, a model on the service, a request id."""


class UnknownModelError(NotFound, KeyError):
    """No model seqnb knows has that id or alias."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown model {self.name!r}: use one of {', '.join(self.known)}"


class SettingInvalid(SeqnbError, ValueError):
    """A setting or argument has a bad value; the message names it and gives an example."""


class BudgetExceeded(SeqnbError):
    """The estimated cost is above the budget; nothing was sent."""


class LedgerError(SeqnbError):
    """The ledger could not record or read; when recording a new run, its submit was not sent."""


class RunTakenOver(LedgerError):
    """Another session took the run over (``resume`` judged this one gone) before its submit left: it was not sent
    from here, and the session that owns it now says what becomes of it."""

    def __init__(self, run_id: str, owner: str | None, message: str) -> None:
        self.run_id = run_id
        self.owner = owner
        super().__init__(message)


class ImageRefused(SeqnbError):
    """An image URL gave nothing usable; ``reason``: expired, too_large, not_an_image, bomb, blocked, invalid,
    unreachable, timeout, disk, gone (an inline image no longer in the cache) (or error)."""

    def __init__(self, url: str, reason: str, detail: str) -> None:
        self.url = url
        self.reason = reason
        shown = url if not url.startswith("data:") or len(url) <= 120 else url[:40] + "..."  # a stand-in is short
        super().__init__(f"image {shown}: {detail}")


class APIError(SeqnbError):
    """The service answered with an error."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: int | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id
        self.body = body
        super().__init__(message)

    @property
    def codes(self) -> str:
        """What the service answered, as ``HTTP 400, error_code 400001`` (empty when it said neither)."""
        said = (
            f"HTTP {self.status_code}" if self.status_code else "",
            f"error_code {self.error_code}" if self.error_code else "",
        )
        return ", ".join(filter(None, said))

    def __str__(self) -> str:
        said = (f"({self.codes})" if self.codes else "", f"[request {self.request_id}]" if self.request_id else "")
        return " ".join(filter(None, (self.message, *said, f"- {self.hint}" if self.hint else "")))


class AuthError(APIError):
    hint = "check the token (argument, RUNCOMFY_TOKEN or `runcomfy login`); tokens are managed in your RunComfy profile"


class Refused(APIError):
    hint = "the service refused this request and charged nothing; read its message before you send it again"


class PermissionDenied(Refused):
    hint = "the request belongs to another RunComfy account, or this account may not use it: use that account's token"


class InputRejected(Refused):
    hint = "fix the listed fields; client.validate(request) shows every problem seqnb knows before you send"

    def __init__(self, message: str, *, fields: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.fields = fields or []


class ModelNotFound(NotFound, APIError):
    hint = "use a model id from seqnb.models()"


class InsufficientBalance(Refused):
    hint = (
        "the account's balance is too low: add funds to your RunComfy account, then send again "
        "(client.balance() shows what it holds); nothing was charged for this request"
    )


class RequestNotFound(NotFound, APIError):
    hint = "the request id is unknown or has expired on the service"


class RateLimited(APIError):
    hint = "slow down; seqnb retries status calls by itself"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    hint = "the service had a problem; try again later"


class Unsendable(SeqnbError, ValueError):
    """The request cannot be encoded for sending (a lone surrogate in a text field); it never left."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class TransportError(SeqnbError):
    """No complete answer came back."""

    maybe_sent = True

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)


class ConnectError(TransportError):
    """The connection was never made; the request certainly did not arrive."""

    maybe_sent = False


class CallTimeout(TransportError):
    """One call to the service got no answer within its deadline; the request may have arrived."""


class WaitTimeout(SeqnbError, TimeoutError):
    """seqnb stopped waiting (for a run, a sweep, a sync call); what it waited for goes on."""


def __getattr__(name: str) -> type[SeqnbError]:
    """Old names, for one release: each warns and gives the class that replaced it."""
    from ._lazy import deprecated

    return deprecated(__name__, name, _RENAMED)  # type: ignore[no-any-return]


_RENAMED: dict[str, tuple[str, str, str]] = {
    "Timeout": ("seqnb.errors", "WaitTimeout", "seqnb.WaitTimeout"),
    "RequestRefused": ("seqnb.errors", "Refused", "seqnb.Refused"),
}
"""Old name -> (module, the name that replaced it there, what to write instead)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` of a ``warnings.warn`` made by the caller that points at the first line outside seqnb.

    However deep inside seqnb the warning is made, and whether the user called the sync facade or
    the async core, it names the user's line, not seqnb's (nor asyncio's).
    """
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level
