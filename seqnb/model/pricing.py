"""Cost estimates: price per image x requested count, as Decimal money with its currency.

Where a price comes from, first found wins: the ``prices=`` argument, the ``SEQNB_PRICES``
environment variable (e.g. ``SEQNB_PRICES="seedream-4.0=0.035,seedream-4.5=0.05 EUR"``), a client's
catalog price (``seqnb.client.money``), then the spec's built-in list price (BytePlus's published
per-image price). Every ``Price`` says its source.
A charge the service says is believed up to ``charge_ceiling`` of the estimate (``charge_suspect``);
money is written by ``format_money``, which never raises, whatever the amount.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..errors import SettingInvalid
from .spec import ModelSpec, get_model

__all__ = [
    "CHARGE_CEILING_UNKNOWN",
    "CHARGE_FLOOR",
    "CHARGE_SUSPECT_FACTOR",
    "Cost",
    "Price",
    "PriceInput",
    "amount_or_none",
    "amount_text",
    "charge_ceiling",
    "charge_suspect",
    "format_money",
    "parse_amount",
    "price_for",
    "prices_from_env",
    "user_price",
]

PriceInput = Mapping[str, "Decimal | str | int | Price"]


@dataclass(frozen=True)
class Price:
    """What one image costs on one model, and where that figure comes from."""

    per_image: Decimal
    currency: str
    source: str


@dataclass(frozen=True)
class Cost:
    """An estimate: count x price per image."""

    amount: Decimal
    currency: str
    count: int
    per_image: Decimal
    source: str

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def amount_text(amount: Decimal) -> str:
    """``0.12``; more decimals only when the amount has them (``0.105``): the one way seqnb writes an amount.

    Never raises: an absurd amount (a hostile ledger row's ``1e308``) is written ``1.000E+308``, and
    one that is no number ``infinite`` or ``not a number``.
    """
    if not amount.is_finite():
        return "not a number" if amount.is_nan() else "-infinite" if amount < 0 else "infinite"
    if amount.adjusted() >= 15:  # beyond any price: quantizing it would pass Decimal's precision
        return f"{amount:.3E}"
    shown = amount.quantize(Decimal("0.01")) if amount == amount.quantize(Decimal("0.01")) else amount.normalize()
    return f"{shown:f}"


def format_money(amount: Decimal, currency: str) -> str:
    """``USD 0.12``; more decimals only when the amount has them (``USD 0.105``). Never raises."""
    return f"{currency} {amount_text(amount)}"


CHARGE_SUSPECT_FACTOR = 100
"""A charge more than this many times the run's estimate is suspect: kept on the run, never summed."""
CHARGE_FLOOR = Decimal("1.00")
"""A charge up to this many USD is never suspect on its own, however small the estimate."""
CHARGE_CEILING_UNKNOWN = Decimal("100.00")
"""The largest charge believed (USD) for a run with no estimate (an attached job that told too little)."""

_ABSURD = Decimal("1e300")  # an estimate this large is no estimate (a hostile row's): the unknown ceiling


def charge_ceiling(estimate: Decimal | None) -> Decimal:
    """The largest charge (USD) believed for a run estimated at ``estimate``: 100x it, at least USD 1.00."""
    if estimate is None or not estimate.is_finite() or estimate < 0 or estimate >= _ABSURD:
        return CHARGE_CEILING_UNKNOWN
    return max(estimate * CHARGE_SUSPECT_FACTOR, CHARGE_FLOOR)


def charge_suspect(estimate: Decimal | None, cost: Decimal) -> str | None:
    """Why a charge the service said (USD) cannot be believed, or None when it can.

    A suspect charge is kept on its run for the record but never summed into spend or a team
    budget: the estimate counts instead (``Ledger.spend`` and ``TeamBudget`` apply the same rule,
    ``charge_ceiling``, to every row, whoever wrote it).
    """
    if not cost.is_finite() or cost < 0:
        return f"SUSPECT CHARGE: the service's charge {amount_text(cost)} is no amount of zero or more; the estimate counts"
    ceiling = charge_ceiling(estimate)
    if cost <= ceiling:
        return None
    known = estimate is not None and estimate.is_finite() and 0 <= estimate < _ABSURD
    what = f"an estimate of USD {amount_text(estimate)}" if known and estimate is not None else "no estimate"
    return (
        f"SUSPECT CHARGE: the service said USD {amount_text(cost)} for a run with {what} (more than USD "
        f"{amount_text(ceiling)}): kept on the run, not counted in spend or the team budget, where the estimate "
        "counts; check the charge on RunComfy's Generations page"
    )


def amount_or_none(value: object) -> Decimal | None:
    """``value`` as a finite amount of money of zero or more, or None for anything else (never raises)."""
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def parse_amount(value: object, where: str, example: str = "5.00") -> Decimal:
    """A finite amount of money of zero or more, or ``SettingInvalid`` naming ``where`` and an example."""
    amount = amount_or_none(value)
    if amount is None:
        raise SettingInvalid(
            f"{where}: {value!r} is not an amount: write a finite amount of zero or more, e.g. {example}"
        )
    return amount


def _parse_price(text: str, where: str) -> tuple[Decimal, str | None]:
    amount, _, currency = text.strip().partition(" ")
    value = parse_amount(amount, where, "0.04 or '0.04 USD'")
    return value, (currency.strip().upper() or None)


def prices_from_env() -> dict[str, Price]:
    """Per-model prices from ``SEQNB_PRICES`` (``model=amount[ CURRENCY]``, comma-separated)."""
    out: dict[str, Price] = {}
    for item in os.environ.get("SEQNB_PRICES", "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingInvalid(f"SEQNB_PRICES: {item!r} needs the form model=price, e.g. seedream-4.5=0.04")
        spec = get_model(name.strip())
        amount, currency = _parse_price(value, "SEQNB_PRICES")
        out[spec.id] = Price(amount, currency or spec.currency, "SEQNB_PRICES")
    return out


def user_price(model: str | ModelSpec, prices: PriceInput | None = None) -> Price | None:
    """The price the user set for a model: the ``prices`` argument, then ``SEQNB_PRICES``; None when neither does."""
    spec = get_model(model)
    for key, value in (prices or {}).items():
        if get_model(key).id != spec.id:
            continue
        if isinstance(value, Price):
            return value
        amount, currency = _parse_price(str(value), f"prices[{key!r}]")
        return Price(amount, currency or spec.currency, "argument")
    return prices_from_env().get(spec.id)


def price_for(model: str | ModelSpec, prices: PriceInput | None = None) -> Price:
    """The price per image of a model: argument, then ``SEQNB_PRICES``, then the spec's default."""
    spec = get_model(model)
    return user_price(spec, prices) or Price(spec.price_per_image, spec.currency, spec.price_source)
