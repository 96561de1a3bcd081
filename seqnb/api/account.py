"""The RunComfy account: its balance, and the check that refuses a sweep the balance cannot pay.

RunComfy answers the balance at ``GET https://api.runcomfy.net/prod/v2/balance`` with
``balance_usd`` and ``currency`` (as `runcomfy balance` reads it; the host differs from the Model API's). The account
API base is configurable like the Model API base: the ``account_base_url=`` argument, else
``$RUNCOMFY_API_BASE``, else https://api.runcomfy.net; for seqnb's emulator, the emulator itself.
The token goes there only when the Model API is RunComfy's own (a ``runcomfy.net`` host over
https) or the user named the account API (``balance_secret``); otherwise the balance is not read
and says why. ``parse_balance``, ``balance_text`` and ``check_balance`` are pure; ``fetch_balance``
is the shell.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .. import errors
from ..model.pricing import format_money
from .auth import Secret
from .backend import checked_url
from .catalog.entry import fetched_text
from .transport import get_once

if TYPE_CHECKING:
    from ..model.sweep import SweepPlan
    from .backend import Backend

__all__ = [
    "BALANCE_PATH",
    "DEADLINE",
    "DEFAULT_ACCOUNT_BASE",
    "Balance",
    "account_base_for",
    "balance_secret",
    "balance_text",
    "check_balance",
    "fetch_balance",
    "parse_balance",
]

DEFAULT_ACCOUNT_BASE = "https://api.runcomfy.net"
BALANCE_PATH = "/prod/v2/balance"
ACCOUNT_BASE_ENV = "RUNCOMFY_API_BASE"
DEADLINE = 5.0
"""Seconds a balance read may take in all."""


@dataclass(frozen=True)
class Balance:
    """What the account holds, when it was read and from where."""

    amount: Decimal
    currency: str
    fetched_at: float
    source: str
    """``RunComfy account at https://api.runcomfy.net`` or ``offline emulator at ...``."""

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)

    def describe(self) -> str:
        """``USD 12.34 (RunComfy account at https://api.runcomfy.net, fetched 2025-06-01 14:03 UTC)``."""
        return f"{self} ({self.source}, {fetched_text(self.fetched_at)})"


def account_base_for(backend: Backend, given: str | None = None) -> str:
    """Where the balance is asked: ``given``, else the emulator itself, else ``$RUNCOMFY_API_BASE``, else RunComfy's."""
    if not given and backend.kind == "emulator":
        parts = urlsplit(backend.base_url)
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    url = given or os.environ.get(ACCOUNT_BASE_ENV)
    if not url:
        return DEFAULT_ACCOUNT_BASE
    return checked_url(url, "account_base_url" if given else ACCOUNT_BASE_ENV, DEFAULT_ACCOUNT_BASE).rstrip("/")


def is_runcomfy_api(url: str) -> bool:
    """Whether ``url`` is RunComfy's own API: https on ``runcomfy.net`` or one of its subdomains."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    return parts.scheme == "https" and (host == "runcomfy.net" or host.endswith(".runcomfy.net"))


def balance_secret(backend: Backend, given: str | None, secret: Secret) -> Secret | None:
    """The token the balance call may carry: the client's when its Model API is RunComfy's own, the emulator, or
    the user named the account API (``given`` or ``$RUNCOMFY_API_BASE``); else None (the balance is not read).
    """
    named = bool(given) or bool(os.environ.get(ACCOUNT_BASE_ENV))
    return secret if named or backend.kind == "emulator" or is_runcomfy_api(backend.base_url) else None


def parse_balance(body: Any, source: str, fetched_at: float) -> Balance:
    """A ``Balance`` from the service's answer; ``ServerError`` naming what is wrong with it."""
    value = body.get("balance_usd") if isinstance(body, dict) else None
    try:
        amount = Decimal(str(value)) if value is not None and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise errors.ServerError(f"the balance answer has no readable balance_usd: {str(body)[:200]}")
    currency = body.get("currency") if isinstance(body, dict) else None
    return Balance(amount, str(currency or "USD").upper(), fetched_at, source)


async def fetch_balance(account_base: str, secret: Secret | None, source: str, deadline: float = DEADLINE) -> Balance:
    """The balance, in one call (retried once) within ``deadline`` seconds.

    ``secret`` None (``balance_secret``: the Model API is not RunComfy's and no account API was
    named): nothing is sent, and ``SettingInvalid`` says how to have the balance read.
    """
    if secret is None:
        raise errors.SettingInvalid(
            f"not read: the Model API is not RunComfy's, and seqnb sends your token to {account_base} only with "
            f"RunComfy's own; name the account API to read it (account_base_url=... or {ACCOUNT_BASE_ENV}=...)"
        )
    body = await get_once(
        account_base, secret, BALANCE_PATH, deadline, what=f"{account_base}{BALANCE_PATH}", attempts=2
    )
    return parse_balance(body, source, time.time())


def balance_text(balance: Balance | BaseException | None) -> str:
    """One line for a header: ``balance USD 12.34``, ``balance unknown (why)``; never raises."""
    if isinstance(balance, Balance):
        return f"balance {balance}"
    if isinstance(balance, BaseException):
        return f"balance unknown ({str(balance).split(' - ')[0][:120]})"
    return "balance not read yet"


def check_balance(plan: SweepPlan, balance: Balance) -> None:
    """Raise ``InsufficientBalance`` when the plan's estimate in the balance's currency is above the balance."""
    estimate = plan.total.get(balance.currency, Decimal(0))
    if estimate > balance.amount:
        raise errors.InsufficientBalance(
            f"sweep {plan.id}: estimated {format_money(estimate, balance.currency)} is over your balance of "
            f"{balance.describe()} ({plan.runs} runs, {plan.images} images); nothing was sent. Top up, shrink "
            "the grid, or pass allow_over_balance=True to send it anyway (the service refuses what the balance "
            "cannot pay)"
        )
