"""The team budget: one amount per currency stored in the ledger, checked before any run or sweep is recorded.

The check reads everyone's committed spend (completed, in flight and in doubt runs of one backend
kind) under the store's serializing lock, and the rows it lets through are written before that
lock is let go: two kernels racing cannot both pass. A charge no one could believe (more than
``charge_ceiling`` of its estimate, or no amount at all) is never summed: its run counts its estimate.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded
from ..model.pricing import CHARGE_CEILING_UNKNOWN, CHARGE_FLOOR, CHARGE_SUSPECT_FACTOR, format_money, parse_amount
from ..runs.run import ACTIVE
from .sessions import SessionInfo
from .stores.base import Store

if TYPE_CHECKING:
    from ..api.backend import Backend
    from ..model.sweep import SweepPlan

__all__ = ["BELIEVED_CHARGE", "COMMITTED", "TeamBudget"]

COMMITTED = ("completed", "created", "submitting", *ACTIVE, "unknown")
"""Statuses whose cost counts against a budget: charged, or may yet be (in flight, in doubt)."""


_COST, _EST = "CAST(cost AS NUMERIC)", "CAST(est_cost AS NUMERIC)"
BELIEVED_CHARGE = (
    f"({_COST} >= 0 AND {_COST} <= CASE WHEN {_EST} >= 0 AND {_EST} < 1e300 THEN CASE WHEN "
    f"{CHARGE_SUSPECT_FACTOR} * {_EST} > {CHARGE_FLOOR} THEN {CHARGE_SUSPECT_FACTOR} * {_EST} "
    f"ELSE {CHARGE_FLOOR} END ELSE {CHARGE_CEILING_UNKNOWN} END)"
)
"""SQL true when a row's charge is believed: ``charge_ceiling`` of ``seqnb.model.pricing``, in SQL
(SQLite and PostgreSQL alike: an infinite or NaN charge is never at most the ceiling)."""


def _money(value: Any) -> Decimal:
    """A sum from the database as an exact amount (SQLite sums in floating point: round to micro-units).

    A sum that is no number (a hostile row's estimate of NaN) counts as infinite: over any budget.
    """
    if value is None:
        return Decimal(0)
    amount = Decimal(str(round(float(value), 6))) if isinstance(value, float) else Decimal(str(value))
    return Decimal("Infinity") if amount.is_nan() else amount


class TeamBudget:
    """The budgets stored in one ledger's store, and the atomic check of a run or sweep against them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local = threading.local()

    @property
    def reserving(self) -> bool:
        """True on a thread inside ``reserve``: its runs were checked with their sweep, not one by one."""
        return bool(getattr(self._local, "reserved", False))

    @contextlib.contextmanager
    def reserve(self, plan: SweepPlan, backend: Backend) -> Iterator[None]:
        """Record a sweep's runs (``record`` calls in the block, on this thread) in one transaction, all or none.

        With a team budget, the committed spend of everyone plus the sweep's estimate is checked
        first, under a lock every other check waits for (in any process, on any host), and the
        sweep's rows are written before that lock is let go: two kernels racing cannot both pass.
        Raises ``BudgetExceeded`` with nothing written.
        """
        with self.store.guard(f"record sweep {plan.id}"), self.store.transaction():
            self.check(plan.total, backend.kind, f"sweep {plan.id}")
            self._local.reserved = True
            try:
                yield
            finally:
                self._local.reserved = False

    def check(self, estimate: dict[str, Decimal], kind: str, what: str, exclude: str | None = None) -> None:
        """Raise ``BudgetExceeded`` if the shared spend plus ``estimate`` goes over a team budget (in a transaction)."""
        for currency, amount in estimate.items():
            limit = self.amount(currency)
            if limit is None:
                continue
            with self.store.transaction(lock=True):  # held until the outer transaction ends
                spent = self.committed(currency, kind, exclude=exclude)
            if spent + amount > limit:
                runs = "simulated (emulator) runs" if kind == "emulator" else "runs on RunComfy"
                raise BudgetExceeded(
                    f"{what} not sent: the team's committed spend on ledger {self.store.location} is "
                    f"{format_money(spent, currency)} ({runs}, everyone's: completed, in flight and in doubt), "
                    f"plus its estimate of {format_money(amount, currency)} is over the team budget of "
                    f"{format_money(limit, currency)}. Shrink it, or raise the budget with ledger.set_budget(...)"
                )

    def committed(self, currency: str = "USD", backend: str = "runcomfy", *, exclude: str | None = None) -> Decimal:
        """Everyone's spend that counts against a budget: charged (as the service said, else estimated), in flight and
        in doubt runs of one backend kind."""
        marks = ", ".join("?" * len(COMMITTED))
        with self.store.guard("read the spend"):
            row = self.store.execute(  # what the service said it charged, where believed (in USD), else the estimate
                f"SELECT SUM(CASE WHEN cost IS NOT NULL AND currency = 'USD' AND {BELIEVED_CHARGE} THEN {_COST} "
                f"WHEN status IN ({marks}) THEN CAST(est_cost AS NUMERIC) ELSE 0 END) FROM runs "
                "WHERE currency = ? AND backend = ? AND id <> ?",
                (*COMMITTED, currency, backend, exclude or ""),
            ).fetchone()
        return _money(row[0])

    def set(self, amount: Decimal | str | float | None, currency: str = "USD") -> None:
        """Store a budget for everyone writing to this ledger (``None`` removes it; see ``Ledger.set_budget``)."""
        with self.store.guard("set the budget"), self.store.transaction():
            if amount is None:
                self.store.execute("DELETE FROM budgets WHERE currency = ?", (currency,))
                return
            value = parse_amount(amount, "budget", "50.00")  # a SettingInvalid, also a ValueError
            self.store.execute(
                "INSERT INTO budgets (currency, amount, set_at, set_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(currency) DO UPDATE SET amount=excluded.amount, set_at=excluded.set_at, set_by=excluded.set_by",
                (currency, str(value), time.time(), SessionInfo.here().user),
            )

    def amount(self, currency: str = "USD") -> Decimal | None:
        """The team budget stored for ``currency``, if any."""
        with self.store.guard("read the budget"):
            row = self.store.execute("SELECT amount FROM budgets WHERE currency = ?", (currency,)).fetchone()
        return Decimal(row[0]) if row else None
