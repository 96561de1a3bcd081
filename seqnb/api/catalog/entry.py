"""One model's entry in RunComfy's catalog, and the price per image it gives (no I/O).

``base_price_usd`` per ``price_unit`` becomes the ``Price`` of every estimate; a unit other than ``image`` is not
used (seqnb estimates per image), and the built-in list price is used instead, its source saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...errors import SeqnbWarning
from ...model.pricing import Price, amount_or_none
from ...model.spec import ModelSpec, get_model

__all__ = ["PRICE_UNIT", "TTL", "CatalogEntry", "CatalogWarning", "builtin_price", "fetched_text", "price_of"]

TTL = 24 * 3600.0
"""Seconds a catalog entry is trusted (one day); ``refresh=True`` reads it again sooner."""
PRICE_UNIT = "image"


class CatalogWarning(SeqnbWarning):
    """The catalog could not be used as is (unreachable, unreadable, priced in another unit)."""


def fetched_text(at: float) -> str:
    """``fetched 2025-06-01 14:03 UTC``."""
    return "fetched " + datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class CatalogEntry:
    """One model's catalog entry, as fetched from ``api_base`` at ``fetched_at``."""

    model_id: str
    display_name: str
    categories: tuple[str, ...]
    base_price_usd: Decimal | None
    price_unit: str | None
    input_schema: Mapping[str, Any] | None
    fetched_at: float
    api_base: str
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, body: Any, *, api_base: str, fetched_at: float) -> CatalogEntry:
        """An entry from the service's answer; ``ValueError`` naming what is missing or malformed."""
        if not isinstance(body, Mapping):
            raise ValueError(f"a catalog entry must be a JSON object, got {type(body).__name__}")
        model_id = body.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("the catalog entry has no model_id")
        price = amount_or_none(body.get("base_price_usd"))  # a JSON true is no price: Decimal("True") is none
        unit = body.get("price_unit")
        schema = body.get("input_schema")
        categories = body.get("categories")
        return cls(
            model_id=model_id,
            display_name=str(body.get("display_name") or model_id),
            categories=tuple(str(c) for c in categories) if isinstance(categories, list) else (),
            base_price_usd=price,
            price_unit=str(unit).strip() if unit is not None else None,
            input_schema=schema if isinstance(schema, Mapping) else None,
            fetched_at=fetched_at,
            api_base=api_base,
            raw=dict(body),
        )

    def fresh(self, now: float, ttl: float = TTL) -> bool:
        return 0 <= now - self.fetched_at < ttl

    def price_text(self) -> str:
        """As RunComfy's CLI shows it: ``$0.04/image``."""
        if self.base_price_usd is None:
            return "no price"
        return f"${self.base_price_usd.normalize():f}/{self.price_unit or '?'}"


def builtin_price(model: str | ModelSpec, why: str) -> Price:
    """The spec's built-in list price, its source saying why the catalog's is not used."""
    spec = get_model(model)
    return Price(spec.price_per_image, spec.currency, f"built-in list price, {why}")


def price_of(entry: CatalogEntry, label: str = "RunComfy catalog") -> Price | str:
    """The entry's price per image, or why it cannot give one (no price, another unit)."""
    if entry.base_price_usd is None:
        return f"the {label} gives no usable base_price_usd for {entry.model_id}"
    unit = (entry.price_unit or "").lower()
    if unit != PRICE_UNIT:
        return (
            f"the {label} prices {entry.model_id} per {entry.price_unit!r}, not per image: seqnb cannot "
            "estimate from it"
        )
    return Price(entry.base_price_usd, "USD", f"{label}, {fetched_text(entry.fetched_at)}")
