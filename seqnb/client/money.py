"""A client's money: what its runs cost (its prices) and what the account holds (its balance), and the check that
refuses a sweep over it; ``Money`` is the part of ``AsyncClient`` that does both (a mixin)."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

from .. import errors
from .._loop import run_detached
from ..api.account import DEADLINE as BALANCE_DEADLINE
from ..api.account import Balance, account_base_for, balance_secret, check_balance, fetch_balance
from ..api.auth import Secret
from ..api.backend import Backend
from ..api.catalog.service import Catalog, CatalogCache
from ..model.pricing import Cost, Price, PriceInput, user_price
from ..model.request import PricedRequest, Request
from ..model.spec import ModelSpec, get_model, models

if TYPE_CHECKING:
    from ..model.sweep import SweepPlan

__all__ = ["BALANCE_FRESH", "BalanceUnchecked", "Money"]


class BalanceUnchecked(errors.SeqnbWarning):
    """A sweep goes out without the balance check: the balance could not be read or compared."""


BALANCE_FRESH = 5.0
"""Seconds a balance read counts as "now" for a sweep's balance check."""


class Money:
    """A client's prices and balance (the part of ``AsyncClient`` that keeps them)."""

    def _init_money(
        self,
        backend: Backend,
        api: str,
        secret: Secret,
        user_prices: PriceInput | None = None,
        account_base_url: str | None = None,
        catalog_cache: CatalogCache | None = None,
    ) -> None:
        self.catalog = Catalog(api, secret, label=backend.catalog_label, cache=catalog_cache)
        """The service's catalog at ``api`` (the emulator's for the emulator): prices and live schemas."""
        self._user_prices = user_prices
        """Prices the user set (``prices=``); with ``SEQNB_PRICES`` they win over the catalog's."""
        self._account_base = account_base_for(backend, account_base_url)
        """Where the balance is read (``account_base_url=``, ``RUNCOMFY_API_BASE``, or RunComfy's account API)."""
        self.last_balance: Balance | None = None
        """The balance as last read (``balance()``, or a sweep's balance check)."""
        self._secret = balance_secret(backend, account_base_url, secret)  # None: the balance is not read (why: said)
        self._source = backend.account_source(self._account_base)

    # --- prices -------------------------------------------------------------------------------

    def price(self, model: str | ModelSpec) -> Price:
        """What one image of ``model`` costs and where that figure comes from.

        ``prices=`` or ``SEQNB_PRICES`` first; else the catalog's ``base_price_usd`` (read once,
        cached for a day; this call waits for it at most ``seqnb.api.catalog.service.DEADLINE`` seconds);
        else the built-in list price, its source saying why the catalog's is not used.
        """
        spec = get_model(model)
        mine = user_price(spec, self._user_prices)
        if mine is not None:
            return mine
        self.catalog.load([m.id for m in models()])
        return self.catalog.price(spec)

    @property
    def prices(self) -> dict[str, Price]:
        """Every model's price per image, as this client's estimates use it; set it to use your own."""
        return {spec.id: self.price(spec) for spec in models()}

    @prices.setter
    def prices(self, value: PriceInput | None) -> None:
        self._user_prices = value

    async def _load_catalog(self) -> None:
        """Read what the catalog has not told yet: the prices that are not the user's, and the reference rules of the
        models that take references (their live limits apply whenever the catalog gives them); never raises."""
        priced = all(user_price(m, self._user_prices) is not None for m in models())
        await self.catalog.aload([m.id for m in models() if not priced or m.references_field is not None])

    async def refresh_prices(self, refresh: bool = True) -> dict[str, Price]:
        """Read the catalog again now (``refresh=False``: only what is not known yet); returns ``prices``."""
        await self.catalog.aload([m.id for m in models()], refresh=refresh)
        return self.prices

    def cost(self, request: Request) -> Cost:
        """A request's estimated cost at this client's prices (what the ledger records for it)."""
        return request.cost({request.model.id: self.price(request.model)})

    def _priced(self, request: Request) -> PricedRequest:
        """The request with its price per image fixed (a request already priced keeps its own)."""
        return request if isinstance(request, PricedRequest) else PricedRequest.of(request, self.price(request.model))

    # --- balance ------------------------------------------------------------------------------

    async def balance(self) -> Balance:
        """The account's balance now (``RunComfy account at ...`` or the emulator's), also kept as ``last_balance``."""
        found = await fetch_balance(self._account_base, self._secret, self._source)
        self.last_balance = found
        return found

    def _read_balance(self) -> Balance:
        """``balance()`` for synchronous code: blocks at most ``seqnb.api.account.DEADLINE`` seconds."""
        return run_detached(self.balance, BALANCE_DEADLINE + 1.0)

    def _check_balance(self, plan: SweepPlan) -> None:
        """Refuse (``InsufficientBalance``) a plan whose estimate is over the balance read now (by this bounded call,
        or by ``balance()`` within ``BALANCE_FRESH`` seconds, so async code can await it first and not block); a
        balance that cannot be read or compared refuses nothing, a ``BalanceUnchecked`` warning says so."""
        if not plan.requests:
            return
        recent = self.last_balance
        try:
            if recent is not None and 0 <= time.time() - recent.fetched_at < BALANCE_FRESH:
                found = recent  # read a moment ago (e.g. awaited by an async sweep just before)
            else:
                found = self._read_balance()
        except errors.SeqnbError as exc:
            warnings.warn(
                f"sweep {plan.id} is sent without a balance check: the balance at {self._account_base} could not "
                f"be read ({str(exc).split(' - ')[0]}); the service refuses what the balance cannot pay",
                BalanceUnchecked,
                stacklevel=errors.user_stacklevel(),
            )
            return
        others = [c for c in plan.total if c != found.currency]
        if others:
            warnings.warn(
                f"sweep {plan.id}: the part priced in {', '.join(others)} cannot be checked against a balance in "
                f"{found.currency}",
                BalanceUnchecked,
                stacklevel=errors.user_stacklevel(),
            )
        check_balance(plan, found)
