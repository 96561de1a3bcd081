"""Promote the picks: the few changes the matrix offers for re-making chosen series, priced, and the call that sends them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import SeqnbError
from ..model.pricing import format_money
from ..model.spec import get_model
from ..runs.run import RunCore

if TYPE_CHECKING:
    from ..client.sync import Client

__all__ = ["CHANGES", "promote_choices", "promote_runs"]

CHANGES: dict[str, dict[str, Any]] = {
    "4K": {"size": "4K"},
    "4096x4096": {"size": "4096x4096 (1:1)"},
    "optimize standard": {"optimize": "standard"},
    "same settings": {},
}
"""What Promote offers: a name and the changes ``client.promote`` gets (only those every picked run's model accepts)."""


def _accepts(run: RunCore, changes: dict[str, Any]) -> bool:
    spec = get_model(run.model)
    for role, value in changes.items():
        field = spec.role(role)
        if field is None or (field.enum and value not in field.enum) or run.request.get(role) == value:
            return False
    return True


def promote_choices(picked: Sequence[RunCore], prices: Any = None) -> dict[str, str]:
    """The changes every picked run accepts, each with what it would cost: ``{"4K": "4K · 2 runs · est. $0.32"}``."""
    if not picked:
        return {}
    out = {}
    for name, changes in CHANGES.items():
        if not all(_accepts(r, changes) for r in picked):
            continue
        try:
            costs = [r.request.replace(**changes).cost(prices) for r in picked]
        except ValueError:
            continue
        total = sum((c.amount for c in costs), Decimal(0))
        out[name] = (
            f"{name} · {len(picked)} run{'s' * (len(picked) != 1)} · est. {format_money(total, costs[0].currency)}"
        )
    return out


def promote_runs(client: Client, runs: Sequence[Any], choice: str) -> tuple[Any, str]:
    """``client.promote(runs, **CHANGES[choice])``: the new sweep (None if refused) and what to tell the user, as HTML."""
    if not runs:
        return None, "pick some series first (<kbd>p</kbd> in the lightbox), then Promote"
    if choice not in CHANGES:
        return None, f"Promote offers {', '.join(CHANGES)}, not {html.escape(choice)!r}"
    try:
        sweep = client.promote(list(runs), quiet=True, **CHANGES[choice])
    except (SeqnbError, ValueError, TypeError) as exc:
        return None, f"not promoted: {html.escape(str(exc))}"
    summary = sweep.plan.summary() if hasattr(sweep, "plan") else f"{len(sweep)} runs"
    return sweep, f"promoted {len(runs)} picked series ({html.escape(choice)}): {html.escape(summary)}"
