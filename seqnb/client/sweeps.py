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
from ..runs.run import AsyncRun, RunEvent

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
    if client.live_schema or any(r.references for r in planned.requests):  # the client knows its http hosts
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
    """Plan, check (rules, ``budget``, and the balance unless ``allow_over_balance``), then prepare every run.

    Given a ``SweepPlan`` (from ``client.plan``) alone, that very plan is sent, under its own id, once.
    """
    planned = _given_plan(args, kw) or client.plan(*args, **kw)
    return prepare_plan(client, planned, budget=budget, allow_over_balance=allow_over_balance)


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
            checked = zip(planned.requests, planned.reports, planned.costs, linked, strict=True)
            for request, report, cost, parent in checked:  # validated by the plan: not again
                price = Price(cost.per_image, cost.currency, cost.source)
                prepared = PricedRequest.of(request, price)
                runs.append(client.prepare(prepared, report=report, sweep_id=planned.id, parent_id=parent))
    except errors.LedgerError as exc:  # nothing of the sweep leaves: the runs already written never will
        for run in runs:
            run.transition("failed", detail="not sent", error=f"not sent: the sweep stopped: {exc}")
        raise
    planned.sent = True
    return Sweep(runs, planned)


def _given_plan(args: tuple[Any, ...], kw: dict[str, Any]) -> SweepPlan | None:
    """The ``SweepPlan`` a sweep was called with, checked to be alone and not sent yet; None for a grid."""
    if not args or not isinstance(args[0], SweepPlan):
        return None
    given: SweepPlan = args[0]
    if len(args) > 1 or kw:
        extra = ", ".join([*(repr(a) for a in args[1:]), *kw])
        raise TypeError(f"sweep(plan) takes the plan alone (and budget=, allow_over_balance=), not also {extra}")
    if given.sent:
        raise errors.SettingInvalid(
            f"sweep {given.id} was sent already: plan it again (client.plan(...)) to send the same grid as a new sweep"
        )
    return given


async def send_all(
    send: Callable[[AsyncRun, float | None], Awaitable[AsyncRun]],
    runs: Iterable[AsyncRun],
    concurrency: int = 8,
    deadline: float | None = None,
) -> None:
    """Submit prepared runs with ``send``, ``concurrency`` at a time; stop sending after an auth or balance failure.

    ``concurrency`` workers take the runs in order (not a task per run: a sweep of 10,000 makes no 10,000 tasks).
    """
    queue = iter(list(runs))
    stop: list[errors.SeqnbError] = []

    async def worker() -> None:
        for run in queue:  # one iterator shared by the workers: each run is taken once
            if stop:
                run.transition("failed", detail="not sent", error=f"not sent: an earlier submit failed: {stop[0]}")
                continue
            try:
                await send(run, deadline)
            except _FATAL as exc:
                stop.append(exc)
            except errors.SeqnbError:
                pass  # recorded on the run

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


async def wait_all(targets: list[AsyncRun], timeout: float | None = None) -> list[AsyncRun]:
    """Until every run of ``targets`` ends; ``seqnb.Timeout`` after ``timeout`` seconds (the runs go on).

    One future for them all, settled by their events (not a waiting task per run).
    """
    waiting = {run.id: run for run in targets if not run.done}
    for run in waiting.values():
        if not run.watching and run.request_id:
            run.client.watch(run)  # as run.wait() does: a run with a request id is watched while waited for
    if not waiting:
        return targets
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_change(event: RunEvent) -> None:
        if event.run.done and waiting.pop(event.run.id, None) is not None and not waiting and not ended.done():
            ended.set_result(None)

    stops = [run.subscribe(on_change) for run in waiting.values()]
    try:
        async with asyncio.timeout(timeout) as scope:
            await ended
    except TimeoutError:
        if not scope.expired():
            raise
        raise errors.Timeout(
            f"{len(waiting)} of {len(targets)} runs still running after {timeout} s: seqnb stopped waiting, the runs "
            "go on (wait again, or cancel them)"
        ) from None
    finally:
        for stop in stops:
            stop()
    return targets
