"""A client's sweeps: planned at its prices, checked, prepared all or none, sent a few at a time, waited for.

Plain functions over an ``AsyncClient``'s public core; the client's ``plan``, ``prepare_sweep``,
``send_all`` and ``wait_all`` delegate here. ``Sweep`` is what a sweep returns: its runs and its plan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import errors
from ..model.priced_request import PricedRequest
from ..model.pricing import Price
from ..model.sweep import SweepPlan, plan_sweep
from ..runs.run import AsyncRun

if TYPE_CHECKING:
    from .core import AsyncClient

__all__ = ["Sweep", "plan", "prepare_plan", "prepare_sweep", "send_all", "wait_all"]

# After one of these, the rest of a sweep would fail the same way: stop sending.
_FATAL = (errors.AuthError, errors.PermissionDenied, errors.InsufficientBalance, errors.ModelNotFound)


class Sweep(list[Any]):
    """The runs of one sweep, with its plan (counts and estimated cost)."""

    def __init__(self, runs: Iterable[Any], plan: SweepPlan) -> None:
        super().__init__(runs)
        self.plan = plan
        self.id = plan.id

    def __repr__(self) -> str:
        states: dict[str, int] = {}
        for run in self:
            states[run.status] = states.get(run.status, 0) + 1
        return f"<Sweep {self.plan.summary()}; " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + ">"


def plan(client: AsyncClient, *args: Any, **kw: Any) -> SweepPlan:
    """The sweep that ``client.sweep()`` would send, validated and priced at the client's prices (nothing is sent)."""
    if kw.get("prices") is None:
        kw["prices"] = client.prices
    planned = plan_sweep(*args, **kw)
    if client.live_schema:
        planned.reports = [client.validate(r) for r in planned.requests]
        planned.costs = [
            r.cost(kw["prices"]) for r, rep in zip(planned.requests, planned.reports, strict=True) if rep.ok
        ]
    return planned


def prepare_sweep(
    client: AsyncClient,
    *args: Any,
    budget: Decimal | str | float | None = None,
    allow_over_balance: bool = False,
    **kw: Any,
) -> Sweep:
    """Plan, check (rules, ``budget``, and the balance unless ``allow_over_balance``), then prepare every run."""
    return prepare_plan(client, client.plan(*args, **kw), budget=budget, allow_over_balance=allow_over_balance)


def prepare_plan(
    client: AsyncClient,
    planned: SweepPlan,
    *,
    budget: Decimal | str | float | None = None,
    allow_over_balance: bool = False,
    parents: Sequence[str | None] = (),
) -> Sweep:
    """Check a plan (rules, ``budget``, the balance unless ``allow_over_balance``), then prepare its runs, all or none.

    ``parents``: each request's parent run id (a promote's originals), in the plan's order.
    """
    planned.check(budget)
    if not allow_over_balance:
        client.check_balance(planned)
    runs: list[AsyncRun] = []
    reserve = client.recorder.reserve(planned) if client.recorder is not None else contextlib.nullcontext()
    linked = list(parents) or [None] * planned.runs
    try:
        with reserve:  # all rows or none, within the ledger's team budget (checked atomically)
            for request, cost, parent in zip(planned.requests, planned.costs, linked, strict=True):
                price = Price(cost.per_image, cost.currency, cost.source)
                prepared = PricedRequest.of(request, price)
                runs.append(client.prepare(prepared, sweep_id=planned.id, parent_id=parent))
    except errors.LedgerError as exc:  # nothing of the sweep leaves: the runs already written never will
        for run in runs:
            run.transition("failed", detail="not sent", error=f"not sent: the sweep stopped: {exc}")
        raise
    return Sweep(runs, planned)


async def send_all(
    send: Callable[[AsyncRun, float | None], Awaitable[AsyncRun]],
    runs: Iterable[AsyncRun],
    concurrency: int = 8,
    deadline: float | None = None,
) -> None:
    """Submit prepared runs with ``send``, ``concurrency`` at a time; stop sending after an auth or balance failure."""
    gate = asyncio.Semaphore(concurrency)
    stop: list[errors.SeqnbError] = []

    async def one(run: AsyncRun) -> None:
        async with gate:
            if stop:
                run.transition("failed", detail="not sent", error=f"not sent: an earlier submit failed: {stop[0]}")
                return
            try:
                await send(run, deadline)
            except _FATAL as exc:
                stop.append(exc)
            except errors.SeqnbError:
                pass  # recorded on the run

    await asyncio.gather(*(one(r) for r in runs))


async def wait_all(targets: list[AsyncRun], timeout: float | None = None) -> list[AsyncRun]:
    """Until every run of ``targets`` ends; ``seqnb.Timeout`` after ``timeout`` seconds (the runs go on)."""
    try:
        async with asyncio.timeout(timeout) as scope:
            await asyncio.gather(*(r.wait() for r in targets))
    except TimeoutError:
        if not scope.expired():
            raise
        left = sum(not r.done for r in targets)
        raise errors.Timeout(
            f"{left} of {len(targets)} runs still running after {timeout} s: seqnb stopped waiting, the runs "
            "go on (wait again, or cancel them)"
        ) from None
    return targets
