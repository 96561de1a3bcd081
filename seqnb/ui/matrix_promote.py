"""Promote the picks from the matrix, never by accident: the changes offered (per model where the picks mix
models), priced by the client's own promote plan, and sent only when a second click confirms the sum.

A promote makes a picked series again as a new paid run with a change (4K, ``optimize="standard"``...),
the child of its original (``client.promote``). ``promote_choices`` says what may be asked of the picks;
``price_offer`` plans it as the client would send it (a pick that already has a promoted child with the
same request is left out unless ``again``) and states the total; ``send_offer`` plans it again and sends
it only if nothing changed since the user read that total.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import SeqnbError, SeqnbWarning
from ..model.pricing import format_money
from ..model.spec import get_model
from ..runs.run import RunCore

if TYPE_CHECKING:
    from ..client.sync import Client
    from ..model.sweep import SweepPlan

__all__ = ["CHANGES", "PROMOTE_IS", "SAME", "Choice", "Offer", "price_offer", "promote_choices", "send_offer"]

PROMOTE_IS = (
    "a promote makes each picked series again, as a new paid run with the change, linked to it as its child "
    "and shown under it"
)
"""What a promote is, in the words every message and the button's hover use."""

SAME = "same settings"
CHANGES: dict[str, dict[str, Any]] = {
    "4K": {"size": "4K"},
    "4096x4096": {"size": "4096x4096 (1:1)"},
    "optimize standard": {"optimize": "standard"},
}
"""The changes Promote offers, by name, as ``client.promote`` takes them (a pick gets one only if its model has it)."""


def _accepts(run: RunCore, changes: dict[str, Any]) -> bool:
    """Whether the run's model takes every change, and each changes something."""
    spec = get_model(run.model)
    for role, value in changes.items():
        field_ = spec.role(role)
        if field_ is None or (field_.enum and value not in field_.enum) or run.request.get(role) == value:
            return False
    return True


def _model(run: RunCore) -> str:
    return get_model(run.model).short_name


@dataclass(frozen=True)
class Choice:
    """One way to promote the picks: for each pick (by run id) the change it gets, by name, or None (left out)."""

    name: str
    given: tuple[tuple[str, str | None], ...]

    def groups(self) -> list[tuple[str, list[str]]]:
        """The picks sent together: (change name, run ids), in the order of the picks."""
        out: dict[str, list[str]] = {}
        for run_id, change in self.given:
            if change is not None:
                out.setdefault(change, []).append(run_id)
        return list(out.items())

    def left_out(self) -> list[str]:
        return [run_id for run_id, change in self.given if change is None]


def _named(assignment: dict[str, str | None], picked: Sequence[RunCore]) -> str:
    """``4K`` when every pick gets it, else per model: ``4K on seedream-4.5 · optimize standard on seedream-4.0``."""
    if len(set(assignment.values())) == 1 and None not in assignment.values():
        return str(next(iter(assignment.values())))
    per_change: dict[str | None, list[str]] = {}
    for run in picked:
        names = per_change.setdefault(assignment[run.id], [])
        if _model(run) not in names:
            names.append(_model(run))
    order = [*CHANGES, SAME]
    changed = sorted((c for c in per_change if c is not None), key=order.index)
    parts = [f"{change} on {', '.join(per_change[change])}" for change in changed]
    if None in per_change:
        parts.append(f"{', '.join(per_change[None])} left out")
    return " · ".join(parts)


def promote_choices(picked: Sequence[RunCore]) -> list[Choice]:
    """What Promote offers for these picks: each change every pick's model has; where the picks mix models, one
    change where the model has it and another (or none) on the others; the same settings always."""
    if not picked:
        return []
    fits = {name: [_accepts(r, changes) for r in picked] for name, changes in CHANGES.items()}
    assignments: list[dict[str, str | None]] = []
    for name, ok in fits.items():
        if all(ok):
            assignments.append({r.id: name for r in picked})
    for name, ok in fits.items():
        if all(ok) or not any(ok):
            continue
        for other, also in fits.items():  # the others get another change they all have...
            if other != name and all(a or b for a, b in zip(ok, also, strict=True)):
                rest = [b for a, b in zip(ok, also, strict=True) if not a]
                if all(rest):
                    assignments.append({r.id: name if a else other for r, a in zip(picked, ok, strict=True)})
        assignments.append({r.id: name if a else None for r, a in zip(picked, ok, strict=True)})  # ...or none
    assignments.append({r.id: SAME for r in picked})
    out: dict[frozenset[tuple[str, str | None]], Choice] = {}
    for assignment in assignments:
        given = tuple(assignment.items())
        out.setdefault(frozenset(given), Choice(_named(assignment, picked), given))
    return list(out.values())


@dataclass
class Offer:
    """A promote priced as the client would send it, waiting for the click that confirms its total."""

    choice: str
    again: bool
    picks: tuple[str, ...]
    groups: list[tuple[str, list[str], SweepPlan]] = field(default_factory=list)
    """(change name, the picks sent, the client's plan for them)."""
    already: list[str] = field(default_factory=list)
    """Picks left out because they already have a promoted child with this request (sent only with ``again``)."""
    left_out: list[str] = field(default_factory=list)
    """Picks whose model has none of the changes chosen."""

    @property
    def runs(self) -> int:
        return sum(plan.runs for _, _, plan in self.groups)

    @property
    def total(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for _, _, plan in self.groups:
            for currency, amount in plan.total.items():
                out[currency] = out.get(currency, Decimal(0)) + amount
        return out

    def total_text(self) -> str:
        return " + ".join(format_money(v, k) for k, v in self.total.items()) or "nothing"

    def button(self) -> str:
        """The confirm button's words, which state the sum: ``Confirm: promote 3 runs, USD 0.36``."""
        return f"Confirm: promote {self.runs} run{'s' * (self.runs != 1)}, {self.total_text()}"

    def same_as(self, other: Offer) -> bool:
        """Whether ``other`` would send the same runs for the same money."""
        mine = [(name, [*(plan.parents or [])], plan.total) for name, _, plan in self.groups]
        theirs = [(name, [*(plan.parents or [])], plan.total) for name, _, plan in other.groups]
        return mine == theirs

    def state(self) -> dict[str, Any]:
        """What the browser shows: the confirm button, and why some picks are not in it."""
        notes = []
        if self.already:
            notes.append(
                f"{len(self.already)} pick{'s' * (len(self.already) != 1)} already "
                f"{'have' if len(self.already) != 1 else 'has'} a promoted child with these settings and "
                f"{'are' if len(self.already) != 1 else 'is'} not sent again: {', '.join(self.already)}"
            )
        if self.left_out:
            notes.append(f"left out (the model has none of these changes): {', '.join(self.left_out)}")
        return {
            "choice": self.choice,
            "again": self.again,
            "runs": self.runs,
            "button": self.button() if self.runs else "",
            "already": list(self.already),
            "left_out": list(self.left_out),
            "notes": notes,
            "plans": [
                f"{name}: {', '.join(plan.parents or [])} ({plan.total_text()})" for name, _, plan in self.groups
            ],
        }


def _plan(client: Client, ids: list[str], changes: dict[str, Any], again: bool) -> SweepPlan | None:
    """The client's promote plan of these picks (nothing sent), or None when each already has that child."""
    with warnings.catch_warnings():  # the picks it leaves out are the offer's to say, beside its button
        warnings.simplefilter("ignore", SeqnbWarning)
        try:
            planned = client.plan_promote(ids, again=again, **changes)
        except SeqnbError:
            if again:
                raise
            client.plan_promote(ids, again=True, **changes)  # the same error again (a bad pick), or...
            return None  # ...every pick has been promoted with these changes already
    planned.check()  # a rule the changed requests break says so now, before any confirm button
    return planned


def price_offer(client: Client, choices: Sequence[Choice], picks: Sequence[str], name: str, again: bool) -> Offer:
    """Plan the choice ``name`` of ``choices`` for ``picks`` as the client would send it; ``SeqnbError`` or
    ``ValueError`` when it cannot be (its words name the runs)."""
    chosen = next((c for c in choices if c.name == name), None)
    if chosen is None:
        offered = "; ".join(c.name for c in choices) or "nothing (pick some series first)"
        raise ValueError(f"Promote offers {offered}, not {name!r}")
    offer = Offer(chosen.name, again, tuple(picks), left_out=chosen.left_out())
    for change, ids in chosen.groups():
        planned = _plan(client, ids, CHANGES.get(change, {}), again)
        sent = list(planned.parents or []) if planned is not None else []
        offer.already += [i for i in ids if i not in sent]
        if planned is not None:
            offer.groups.append((change, ids, planned))
    return offer


def send_offer(client: Client, offer: Offer, choices: Sequence[Choice]) -> tuple[list[Any], Offer | None, str]:
    """Send a confirmed offer: (the sweeps sent, a new offer when the total changed since and nothing was sent,
    what to tell the user as HTML). Planned again first: only the very runs and money confirmed leave."""
    try:
        fresh = price_offer(client, choices, offer.picks, offer.choice, offer.again)
    except (SeqnbError, ValueError) as exc:
        return [], None, not_sent(exc, offer.picks)
    if not fresh.same_as(offer):
        return (
            [],
            fresh,
            (
                f"the promote changed since you read its total (now {html.escape(fresh.button() or 'nothing to send')}): "
                "nothing was sent; check it and confirm again"
            ),
        )
    sent: list[Any] = []
    with warnings.catch_warnings(record=True) as said:  # the client's warnings, said beside the button clicked
        warnings.simplefilter("always")
        for change, _, planned in fresh.groups:
            ids = list(planned.parents or [])
            try:
                sent.append(client.promote(ids, again=offer.again, quiet=True, **CHANGES.get(change, {})))
            except (SeqnbError, ValueError, TypeError) as exc:
                done = "; ".join(s.plan.summary() for s in sent if hasattr(s, "plan"))
                return sent, None, (f"sent: {html.escape(done)}; " if done else "") + not_sent(exc, ids)
    names = ", ".join(str(getattr(s, "id", "")) for s in sent)
    notes = "".join(f"<br>{html.escape(str(w.message))}" for w in dict.fromkeys(said, None))
    text = (
        f"promoted {fresh.runs} picked series ({html.escape(offer.choice)}), estimated {html.escape(fresh.total_text())}"
        f" ({html.escape(names)}): they show under their originals, badged ⤴ promoted{notes}"
    )
    return sent, None, text


def not_sent(exc: BaseException, ids: Sequence[str]) -> str:
    """The HTML message of a promote refused before anything was sent, naming the picks by id."""
    return (
        f"Promote not sent ({html.escape(PROMOTE_IS)}): {html.escape(str(exc))} [picks: {html.escape(', '.join(ids))}]"
    )
