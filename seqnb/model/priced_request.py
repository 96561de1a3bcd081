"""A request that carries the price its client resolved (from the catalog, or the built-in one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .pricing import Cost, Price
from .request import Request
from .spec import get_model

__all__ = ["PricedRequest"]


class PricedRequest(Request):
    """A ``Request`` carrying the price its client resolved, so every later ``cost()`` (the ledger's too) uses it.

    An explicit ``prices=`` naming its model still wins; ``replace`` keeps the price.
    """

    __slots__ = ("price",)
    price: Price

    @classmethod
    def of(cls, request: Request, price: Price) -> PricedRequest:
        priced = cls.__new__(cls)
        for name in Request.__slots__:
            object.__setattr__(priced, name, getattr(request, name))
        priced.price = price
        return priced

    def cost(self, prices: Mapping[str, Any] | None = None) -> Cost:
        if prices and any(get_model(key).id == self.model.id for key in prices):
            return super().cost(prices)
        return super().cost({self.model.id: self.price})

    def replace(self, **changes: Any) -> PricedRequest:
        return PricedRequest.of(super().replace(**changes), self.price)
