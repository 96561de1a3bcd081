"""What shapes the emulated service: its token, pacing, faults, prices, balance and where it listens."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .._netaddr import is_loopback
from ..model.pricing import amount_or_none
from ..model.references import MAX_REQUEST_BYTES
from ..model.spec import get_model
from .faults import Faults
from .queue import QueueConfig

__all__ = ["BODY_LIMIT", "CONTROL_SECRET", "EmulatorConfig"]

BODY_LIMIT = MAX_REQUEST_BYTES
"""Largest request body the emulator reads (64 MiB, RunComfy's, inline reference images included); a larger one is
answered 413 before it is read."""

CONTROL_SECRET = secrets.token_urlsafe(18)
"""This process's secret: the Bearer token the control routes and uploads of an emulator without a
token of its own take (``EmulatorConfig.control_token``): any web page the user opens can send requests to
loopback, none can know this. ``seqnb emulator`` prints it at start."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes the emulated service."""

    token: str | None = None
    """The one token accepted; None accepts any non-empty Bearer token on the API's routes (the
    controls and uploads then take ``CONTROL_SECRET``)."""
    queue: QueueConfig = field(default_factory=QueueConfig)
    faults: Faults = field(default_factory=Faults)
    image_ttl: float = 3600.0
    """Seconds an image URL stays valid after its job completes."""
    image_format: Literal["jpeg", "png"] = "jpeg"
    balance: Decimal | None = None
    """Account balance in USD, charged as runs complete; a submit that would overdraw it (counting
    the runs still pending) fails with 400002. None: unlimited (the balance route then counts down
    from ``UNLIMITED_BALANCE``)."""
    failed_cost_share: Decimal = Decimal(0)
    """Share (0 to 1) of a completed run's price that a failed run is charged, in the balance and in the
    result's ``cost``. What RunComfy charges for a failed run is UNCONFIRMED: 0 (nothing) by default."""
    prices: Mapping[str, Decimal | str | float] = field(default_factory=dict)
    """USD per image by model id or alias, for the catalog and the charges; default: the spec's list price."""
    host: str = "127.0.0.1"
    """Where the emulator listens; beyond loopback its control routes are off unless ``controls``."""
    controls: bool | None = None
    """The ``/_emulator/*`` routes: None serves them only on loopback, True everywhere, False nowhere."""
    body_limit: int = BODY_LIMIT

    def __post_init__(self) -> None:
        balance: object = self.balance  # "0.10" and 5 are welcome too
        if balance is not None and not isinstance(balance, Decimal):
            object.__setattr__(self, "balance", Decimal(str(balance)))
        share = amount_or_none(self.failed_cost_share)
        if share is None or share > 1:
            raise ValueError(
                f"EmulatorConfig.failed_cost_share: give a share from 0 to 1, got {self.failed_cost_share!r}"
            )
        object.__setattr__(self, "failed_cost_share", share)
        resolved: dict[str, Decimal] = {}
        for name, given in self.prices.items():
            price = amount_or_none(given)
            if price is None:
                raise ValueError(f"EmulatorConfig.prices[{name!r}]: give a price of 0 or more USD, got {given!r}")
            resolved[get_model(name).id] = price
        object.__setattr__(self, "prices", resolved)

    def price(self, model_id: str) -> Decimal:
        """USD per image on this model."""
        found = self.prices.get(model_id)
        return Decimal(found) if found is not None else get_model(model_id).price_per_image

    @property
    def control_token(self) -> str:
        """The Bearer token ``/_emulator/*`` and ``POST /files`` take: the token, else this process's ``CONTROL_SECRET``."""
        return self.token if self.token is not None else CONTROL_SECRET

    def controls_for(self, local_address: str | None) -> bool:
        """Whether the ``/_emulator/*`` routes answer a call that arrived on ``local_address``.

        With ``controls=None`` they answer only when the emulator listens on loopback and the call
        came in over loopback (the second check guards a server started without telling ``host``).
        """
        if self.controls is not None:
            return self.controls
        return is_loopback(self.host) and local_address is not None and is_loopback(local_address)
