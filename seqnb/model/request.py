"""A request in the shared vocabulary (prompt, count, size, seed, optimize), mapped to a model's wire names; and a
request carrying the price its client resolved (``PricedRequest``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .pricing import Cost, Price, PriceInput, price_for
from .references import is_single
from .spec import COUNT_RANGE, ROLES, ModelSpec, get_model, models
from .validation import Fix, Problem, Report, validate_payload

__all__ = ["PricedRequest", "Request", "match_size"]


def _no_option(spec: ModelSpec, role: str) -> Problem:
    """The error for a role this model has no field for, naming the models that have one (for references, its
    edit-sequential sibling)."""
    owners = [m for m in models() if m.role(role)]
    sibling = next((m for m in owners if m.id == spec.id.replace("/sequential", "/edit-sequential")), None)
    named = ", ".join(m.short_name for m in owners)
    if role != "references":
        said = f"has no {role!r} option (only {named}): leave it unset"
    else:
        hint = f"use {sibling.short_name!r} ({sibling.id})" if sibling else f"use one of {named}"
        said = f"takes no reference images: {hint}, its edit-sequential sibling, or leave references unset"
    fixes = (Fix(f"remove {role}", {role: None}),)
    return Problem(role, f"{spec.short_name} {said}", code="unknown_field", wire=role, fixes=fixes)


def match_size(spec: ModelSpec, value: str) -> str | None:
    """The one size option a loose spelling names ("16:9", "2560x1440"), or None."""
    if value in spec.sizes:
        return value
    key = value.strip().lower().replace("×", "x").replace("*", "x").replace(" ", "")
    hits = []
    for option in spec.sizes:
        dims, _, ratio = option.partition(" ")
        if key in (dims.lower().replace(":", "x"), ratio.strip("()"), option.lower().replace(" ", "")):
            hits.append(option)
    return hits[0] if len(hits) == 1 else None


class Request:
    """One generation request for one model; immutable, validated on demand.

    ``Request("seedream-4.5", "Generate 4 images of a fox", count=4, size="2K", seed=7)``.
    Raw wire fields may be passed as keyword options too (``optimize_prompt_options="standard"``).
    """

    __slots__ = ("_extra", "_model", "_model_seed", "_values")

    def __init__(
        self,
        model: str | ModelSpec,
        prompt: str | None = None,
        *,
        count: int | None = None,
        size: str | None = None,
        seed: int | str | None = None,
        optimize: str | None = None,
        references: Iterable[Any] | Any = None,
        **options: Any,
    ) -> None:
        spec = get_model(model)
        self._model_seed = seed == "default"
        if self._model_seed:
            seed = None  # nothing sent: the model uses its own default
        values: dict[str, Any] = {}
        extra: list[Problem] = []
        refs = None if references is None else [references] if is_single(references) else list(references)
        given = {
            "prompt": prompt, "count": count, "size": size, "seed": seed, "optimize": optimize, "references": refs,
        }  # fmt: skip
        for role, value in given.items():
            if value is None:
                continue
            f = spec.role(role)
            if f is None:
                extra.append(_no_option(spec, role))
                continue
            if role == "size" and isinstance(value, str):
                value = match_size(spec, value) or value
            values[f.wire] = value
        for key, value in options.items():
            f = spec.field(key)
            if f is not None and f.role and given.get(f.role) is not None:
                raise TypeError(f"{key!r} and {f.role!r} set the same field; pass only one")
            values[key] = value
        for wire, value in values.items():
            f = spec.field(wire)
            if f and f.kind == "integer" and isinstance(value, float) and value.is_integer():
                values[wire] = int(value)
            elif f and f.kind == "array" and isinstance(value, tuple):
                values[wire] = list(value)
        self._model = spec
        self._values = values
        self._extra = tuple(extra)

    @classmethod
    def from_payload(cls, model: str | ModelSpec, payload: Mapping[str, Any]) -> Request:
        """A request from raw wire JSON, kept field for field."""
        return cls(model, **dict(payload))

    @property
    def model(self) -> ModelSpec:
        return self._model

    def get(self, role: str) -> Any:
        """The value set for a role or wire name, or None."""
        f = self._model.role(role) or self._model.field(role)
        return self._values.get(f.wire) if f else self._values.get(role)

    @property
    def prompt(self) -> str | None:
        value = self.get("prompt")
        return value if isinstance(value, str) else None

    @property
    def references(self) -> tuple[str, ...]:
        """The reference images (edit-sequential models), in order; empty when none: URLs, and the stand-ins of
        inline images (``seqnb.model.references``); before a client resolves them, also local files, PIL images..."""
        value = self.get("references")
        return tuple(value) if isinstance(value, list | tuple) else ()

    def _effective(self, role: str) -> Any:
        """The value set for a role, else the model's default for it (None when it has neither)."""
        value = self.get(role)
        return value if value is not None else self._model.default(role)

    @property
    def count(self) -> int:
        """The requested (maximum) number of images; the default when unset."""
        return self._effective("count")  # type: ignore[no-any-return]

    @property
    def size(self) -> str | None:
        """The size option, or the model's default."""
        return self._effective("size")  # type: ignore[no-any-return]

    @property
    def sent_seed(self) -> int | None:
        """The seed the payload carries, or None when none is sent."""
        return self.get("seed")  # type: ignore[no-any-return]

    @property
    def uses_model_seed(self) -> bool:
        """True when the user asked for the model's own default seed (``seed="default"``)."""
        return self._model_seed

    @property
    def seed(self) -> int | None:
        """The seed, or the model's default (None when the model picks one at random)."""
        return self._effective("seed")  # type: ignore[no-any-return]

    def payload(self) -> dict[str, Any]:
        """The wire JSON: what was set, plus the count, which is always sent because it sets the price."""
        out = dict(self._values)
        out.setdefault(self._model.count_field.wire, self._model.count_field.default)
        return out

    def resolved(self) -> dict[str, Any]:
        """Every role with its effective value (defaults filled in), for ledgers and captions."""
        out: dict[str, Any] = {"model": self._model.id}
        for role in ROLES:
            if self._model.role(role) is not None:
                out[role] = self._effective(role)
        out["options"] = {
            k: v for k, v in self._values.items() if (f := self._model.field(k)) is None or f.role is None
        }
        return out

    def validate(self, *, http_hosts: Iterable[str] = ()) -> Report:
        """Every problem of this request at once (see ``Report``); ``http_hosts`` may serve references over http."""
        report = validate_payload(self._model, self.payload(), http_hosts=http_hosts)
        if not self._extra:
            return report
        return Report(report.model, self._extra + report.problems, report.checked)

    def check(self) -> Request:
        """Raise ``RequestInvalid`` listing every error; return self when none."""
        from ..errors import RequestInvalid

        report = self.validate()
        if not report.ok:
            raise RequestInvalid(report)
        return self

    def cost(self, prices: PriceInput | None = None) -> Cost:
        """Estimated price: price per image x requested count (the pages bill the count option)."""
        count = self.count
        if isinstance(count, bool) or not isinstance(count, int) or count not in COUNT_RANGE:
            raise ValueError(f"count must be a whole number from 1 to 15 to estimate a cost, got {count!r}")
        price = price_for(self._model, prices)
        return Cost(price.per_image * count, price.currency, count, price.per_image, price.source)

    def replace(self, **changes: Any) -> Request:
        """A copy with some roles or wire fields changed; ``None`` removes a field."""
        values = dict(self._values)
        for key, value in changes.items():
            f = self._model.role(key) or self._model.field(key)
            wire = f.wire if f else key
            if key == "size" and isinstance(value, str):
                value = match_size(self._model, value) or value
            if value is None:
                values.pop(wire, None)
            else:
                values[wire] = value
        clone = Request(self._model, **values)
        clone._model_seed = self._model_seed and "seed" not in changes
        clone._extra = tuple(p for p in self._extra if p.field not in changes)
        return clone

    def apply(self, fix: Fix) -> Request:
        """A copy with a validation fix applied."""
        return self.replace(**dict(fix.changes))

    def for_model(self, model: str | ModelSpec) -> Request:
        """The same request in another model's wire names (roles carried over, the rest dropped)."""
        target = get_model(model)
        kept: dict[str, Any] = {}
        for role in ROLES:
            value = self.get(role)
            if value is None or target.role(role) is None:
                continue
            if role == "size":
                value = match_size(target, str(value).split(" ")[0].replace(":", "x")) or target.default("size")
            kept[role] = value
        return Request(target, **kept)

    def key(self) -> str:
        """A stable identity of what would be sent: model and canonical payload JSON."""
        return self._model.id + " " + json.dumps(self.payload(), sort_keys=True, ensure_ascii=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and other.key() == self.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Request({self._model.short_name!r}, {fields})"


class PricedRequest(Request):
    """A ``Request`` carrying the price its client resolved, so every later ``cost()`` (the ledger's too) uses it.

    An explicit ``prices=`` naming its model still wins; ``replace`` keeps the price.
    """

    __slots__ = ("price",)
    price: Price

    @classmethod
    def of(cls, request: Request, price: Price) -> PricedRequest:
        priced = cls.__new__(cls)
        for name in Request.__slots__:
            object.__setattr__(priced, name, getattr(request, name))
        priced.price = price
        return priced

    def cost(self, prices: PriceInput | None = None) -> Cost:
        if prices and any(get_model(key).id == self.model.id for key in prices):
            return super().cost(prices)
        return super().cost({self.model.id: self.price})

    def replace(self, **changes: Any) -> PricedRequest:
        return PricedRequest.of(super().replace(**changes), self.price)
