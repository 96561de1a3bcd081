"""Switchable, deterministic fault injection for the emulator.

Per-call faults (429, 5xx, dropped connections, slow answers, HTTP 200 with an ``error_code``)
are drawn from one stream seeded by ``seed``, in the order calls arrive; per-job faults (failed
jobs, short batches, expired image URLs) from the job's sequence number, so job N behaves the
same in every run with the same seed.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

__all__ = ["ALL_ROUTES", "PROBABILITIES", "CallFault", "FaultDice", "Faults", "JobFaults"]

Route = Literal["submit", "status", "result", "cancel"]
CallFault = Literal["rate_limit", "server_error", "drop", "drop_after", "slow", "error_200"]
ALL_ROUTES: tuple[Route, ...] = ("submit", "status", "result", "cancel")


@dataclass(frozen=True)
class Faults:
    """Probabilities (0..1) of each fault (``PROBABILITIES`` says what each does); all zero by default."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    drop: float = 0.0
    drop_after: float = 0.0
    slow: float = 0.0
    error_200: float = 0.0
    fail: float = 0.0
    short: float = 0.0
    expire: float = 0.0
    retry_after: float = 1.0
    slow_seconds: float = 3.0
    routes: tuple[Route, ...] = ALL_ROUTES
    """The API calls that per-call faults apply to."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in PROBABILITIES:
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} is a probability: give a number from 0 to 1, got {value!r}")
        for name in ("retry_after", "slow_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= _MAX_SECONDS:
                raise ValueError(
                    f"Faults.{name} is in seconds: give a number from 0 to {_MAX_SECONDS:g}, got {value!r}"
                )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"Faults.seed must be a whole number, got {self.seed!r}")
        routes: object = self.routes  # from JSON or a caller, it may be anything
        if isinstance(routes, list):
            routes = tuple(routes)
            object.__setattr__(self, "routes", routes)
        if not isinstance(routes, tuple) or not all(isinstance(r, str) for r in routes):
            raise ValueError(f"Faults.routes must be a list of route names ({', '.join(ALL_ROUTES)}), got {routes!r}")
        unknown = set(self.routes) - set(ALL_ROUTES)
        if unknown:
            raise ValueError(f"Faults.routes: unknown route(s) {sorted(unknown)}; use {', '.join(ALL_ROUTES)}")

    @classmethod
    def from_json(cls, raw: object) -> Faults:
        """Faults from a decoded JSON object (the control route's body); ValueError names what is wrong."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"give a JSON object of fault settings, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in raw if k not in known)
        if unknown:
            raise ValueError(f"unknown fault setting(s) {unknown}; use {', '.join(f.name for f in fields(cls))}")
        settings: dict[str, Any] = dict(raw)
        return cls(**settings)

    @property
    def any(self) -> bool:
        return any(getattr(self, name) > 0 for name in PROBABILITIES)


PROBABILITIES = {
    "rate_limit": "a 429 with a Retry-After header",
    "server_error": "a 500, 502 or 503",
    "drop": "the connection closes before the call is handled",
    "drop_after": "the call is handled, then the connection closes before the answer",
    "slow": "the answer is held back --slow-seconds",
    "error_200": "an HTTP 200 whose body carries an error_code",
    "fail": "a job ends failed",
    "short": "a job returns fewer images than asked",
    "expire": "a job's image URLs expire as soon as it completes",
}
"""The fault probabilities, by ``Faults`` field name, and what each does: the one list (the CLI makes its flags and
their help from it)."""
_MAX_SECONDS = 3600.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_CALL_FAULTS: tuple[CallFault, ...] = get_args(CallFault)


@dataclass(frozen=True)
class JobFaults:
    """What goes wrong with one job."""

    fail: bool = False
    returned: int | None = None
    expire: bool = False


class FaultDice:
    """Draws fault decisions deterministically from the configured seed."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._active = faults.any
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def for_call(self, route: Route) -> CallFault | None:
        """The fault for this call, if any (at most one per call)."""
        f = self.faults
        if not self._active or route not in f.routes:
            return None
        with self._lock:
            roll = self._rng.random()
        edge = 0.0
        for name in _CALL_FAULTS:
            edge += getattr(f, name)
            if roll < edge:
                return name
        return None

    def pick(self, choices: tuple[int, ...]) -> int:
        with self._lock:
            return self._rng.choice(choices)

    def for_job(self, seq: int, count: int) -> JobFaults:
        f = self.faults
        if not (f.fail or f.short or f.expire):
            return JobFaults()
        rng = random.Random(f"{f.seed}:{seq}")
        fail = rng.random() < f.fail
        short = rng.random() < f.short and count > 1
        return JobFaults(
            fail=fail, returned=rng.randint(1, count - 1) if short else None, expire=rng.random() < f.expire
        )
