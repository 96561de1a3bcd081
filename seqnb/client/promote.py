"""Promote the picks: chosen runs made again with changes (4K, ``standard``), as one sweep of their children.

Explore cheaply, then make the keepers at full quality: each chosen run's request (its prompt,
model and seed) with ``changes`` (any change ``rerun`` takes: ``size``/``resolution``,
``optimize``, ``count``, ``seed``), priced first and held to ``budget=`` and the balance exactly
like a sweep (``sweeps.prepare_plan``: all or none), each new run a child of its original
(``parent_id``; ``Ledger.lineage`` shows the chain). ``AsyncClient.promote`` and ``Client.promote``
delegate here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .. import errors
from ..runs.run import RunCore
from .adopt import ledger_for
from .sweeps import Sweep, prepare_plan

if TYPE_CHECKING:
    from .core import AsyncClient

__all__ = ["prepare_promote", "run_ids"]


def run_ids(runs: Any) -> list[str]:
    """The run ids among ``runs``: runs of either client, run ids, a frame of runs (its ``id`` column or its index)."""
    if isinstance(runs, str | RunCore) or hasattr(runs, "aio"):  # one run
        runs = [runs]
    elif hasattr(runs, "columns"):  # a frame from ledger.runs(), or one indexed by run id
        runs = list(runs["id"]) if "id" in runs.columns else list(runs.index)
    ids: list[str] = []
    for item in runs:
        run_id = item if isinstance(item, str) else getattr(item, "id", None)
        if not isinstance(run_id, str) or not run_id:
            raise errors.SettingInvalid(
                f"runs: {item!r} is not a run; give runs, run ids, or a frame of runs (ledger.runs(verdict='picked'))"
            )
        if run_id not in ids:
            ids.append(run_id)
    return ids


def prepare_promote(
    client: AsyncClient,
    runs: Any,
    *,
    budget: Decimal | str | float | None = None,
    allow_over_balance: bool = False,
    **changes: Any,
) -> Sweep:
    """Plan the chosen runs again with ``changes``, check the plan like a sweep's, then prepare every run (none sent).

    ``budget``: refuse the lot if its estimate is over; ``allow_over_balance``: send it even over the balance.
    """
    ids = run_ids(runs)
    if not ids:
        raise errors.SettingInvalid(
            "runs: nothing to promote; give the runs to make again, e.g. ledger.runs(verdict='picked')"
        )
    parents = [_parent(client, run_id) for run_id in ids]
    planned = client.plan(requests=[p.request.replace(**changes) for p in parents])
    return prepare_plan(client, planned, budget=budget, allow_over_balance=allow_over_balance, parents=ids)


def _parent(client: AsyncClient, run_id: str) -> RunCore:
    try:
        return client.run(run_id)
    except KeyError:
        pass
    try:
        return ledger_for(client, None).restore(run_id)
    except errors.LedgerError as exc:
        raise errors.SettingInvalid(f"runs: cannot promote {run_id!r}: {exc}") from exc
