"""Schema drift: RunComfy's live input schema compared with the model's built-in one (no I/O).

Two schemas compared field by field: a field added or removed, and each property that differs
(type, enum values added or dropped, limits, required, default, format, validations) is one
``SchemaDrift``, warned once per model as a ``SchemaDriftWarning``. Titles and descriptions are
words, not rules, and are left out. A limit the model's page states only in words (4.5's prompt
"less than 600 characters") drifts only when the live schema is stricter. Requests still follow
the built-in spec unless a client opts into the live schema (``live_schema=True``: validation
then uses ``spec_from_schema``), but for the reference rules (``maxItems`` and ``validations`` of the
references field): those of the live schema are always the ones checked, so their differences are
``followed`` and not warned of.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...model.spec import FieldSpec, ModelSpec
from .entry import CatalogWarning

__all__ = ["DriftKind", "SchemaDrift", "SchemaDriftWarning", "schema_drift"]


class SchemaDriftWarning(CatalogWarning):
    """RunComfy's live input schema differs from seqnb's built-in spec."""


DriftKind = Literal[
    "schema", "added", "removed", "type", "enum", "limit", "required", "default", "format", "validations", "other"
]
_LIMITS = ("maxLength", "minLength", "pattern", "maxItems", "minItems")
_BOUNDS: dict[str, Callable[[float, int], bool]] = {
    "minimum": lambda bound, v: v >= bound,
    "exclusiveMinimum": lambda bound, v: v > bound,
    "maximum": lambda bound, v: v <= bound,
    "exclusiveMaximum": lambda bound, v: v < bound,
}
"""Numeric bounds, each with whether a value keeps it (a bound every value of the enum keeps changes nothing)."""
_KINDS: dict[str, DriftKind] = {
    "type": "type",
    "items": "type",
    "enum": "enum",
    "default": "default",
    "format": "format",
    "validations": "validations",
    "required": "required",
    **dict.fromkeys((*_LIMITS, *_BOUNDS), "limit"),
}
_WORDS = ("title", "description")
_CHECKED = ("type", "items", "enum", "default", "required", "maxLength", "maxItems")
"""What seqnb reads of a field (a live rule in anything else is not checked before sending)."""
_FOLLOWED = ("maxItems", "validations")
"""What seqnb always reads of the live references field (``Catalog.reference_limits``)."""


@dataclass(frozen=True)
class SchemaDrift:
    """One difference between the live input schema and seqnb's built-in spec."""

    model: str
    field: str
    kind: DriftKind
    detail: str
    followed: bool = False
    """The live value is the one seqnb checks (a reference rule): said, not warned of."""

    def __str__(self) -> str:
        where = f"field {self.field!r}" if self.field else "input schema"
        then = (
            "seqnb checks the live value"
            if self.followed
            else "seqnb still validates with its built-in spec (live_schema=True uses the live one)"
        )
        return f"{self.model}: RunComfy's live {where} differs from seqnb's built-in spec: {self.detail}. {then}"


def _show(value: Any) -> str:
    if isinstance(value, Mapping) and "validation_rule" in value:
        return f"{value['validation_rule']} {value.get('validation_value')!r} ({value.get('validation_error')!r})"
    return repr(value)


def _property(key: str, ours: Any, live: Any, f: FieldSpec | None) -> str | None:
    """How one property of a field differs, in words; None when the difference changes nothing."""
    checked = key in _CHECKED or (key in _FOLLOWED and f is not None and f.role == "references")
    unchecked = "" if checked else f"; seqnb does not check {key}"
    if key == "required":
        return "required live, optional built in" if live else "optional live, required built in"
    if key == "enum" and (ours is None or live is None):
        if live is None:
            return "the live schema no longer restricts it to a list of values"
        return f"the live schema restricts it to {', '.join(map(_show, live))}"
    if isinstance(ours, list | None) and isinstance(live, list | None):  # enum values, validations
        added = [_show(v) for v in live or () if v not in (ours or ())]
        dropped = [_show(v) for v in ours or () if v not in (live or ())]
        parts = ([f"adds {', '.join(added)}"] if added else []) + ([f"drops {', '.join(dropped)}"] if dropped else [])
        return f"the live {key} list " + " and ".join(parts) + unchecked if parts else None
    numbers = [v for v in (f.enum or ()) if type(v) is int] if f else []
    bound = _BOUNDS.get(key)
    if bound and ours is None and numbers and isinstance(live, int | float) and all(bound(live, v) for v in numbers):
        return None  # a bound every value of the enum keeps
    if ours is None:
        return f"the live schema sets {key} {_show(live)}{unchecked}"
    if live is None:
        return f"the live schema no longer sets {key} (built in: {_show(ours)})"
    return f"{key} is {_show(live)} live, {_show(ours)} built in{unchecked}"


def _differences(
    ours: Mapping[str, Any], live: Mapping[str, Any], f: FieldSpec | None
) -> list[tuple[str, DriftKind, str]]:
    """Every property of one field that differs between the built-in and the live schema: (property, kind, words)."""
    borrowed = " (the built-in value is UNCONFIRMED)" if f is not None and f.unconfirmed else ""
    out: list[tuple[str, DriftKind, str]] = []
    for key in dict.fromkeys([*ours, *live]):
        if key in _WORDS or ours.get(key) == live.get(key):
            continue
        if key == "maxLength" and f is not None and f.max_length_origin == "page":
            limit = live.get(key)  # the built-in limit is the page's words, not in its schema
            if isinstance(limit, int) and f.max_length is not None and limit < f.max_length:
                out.append((key, "limit", f"maxLength is {limit} live; seqnb allows {f.max_length} (from the page)"))
            continue
        detail = _property(key, ours.get(key), live.get(key), f)
        if detail is not None:
            out.append((key, _KINDS.get(key, "other"), detail + borrowed))
    return out


def _fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Each field's definition by wire name, whether it is required as one more property."""
    listed = schema.get("required", [])
    required = {str(r) for r in listed} if isinstance(listed, list) else set()
    return {
        str(w): {**p, "required": str(w) in required} if isinstance(p, Mapping) else p
        for w, p in schema["properties"].items()
    }


def schema_drift(spec: ModelSpec, schema: Any) -> list[SchemaDrift]:
    """Every difference between a live input schema and the model's built-in one; never raises."""
    model = spec.id
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return [SchemaDrift(model, "", "schema", "it is not a JSON schema object with properties")]
    ours, live = _fields(spec.input_schema()), _fields(schema)
    out: list[SchemaDrift] = []
    for wire in dict.fromkeys([*live, *ours]):
        prop = live.get(wire)
        if wire not in ours:
            kind = prop.get("type") if isinstance(prop, Mapping) else None
            detail = f"the live schema has a field seqnb does not know (type {kind!r}); seqnb refuses it"
            out.append(SchemaDrift(model, wire, "added", detail))
        elif wire not in live:
            detail = "the live schema no longer has it; seqnb still sends it when set"
            out.append(SchemaDrift(model, wire, "removed", detail))
        elif not isinstance(prop, Mapping):
            out.append(SchemaDrift(model, wire, "schema", f"its live definition is not an object: {prop!r}"))
        else:
            f = spec.field(wire)
            refs = f is not None and f.role == "references"
            out += [
                SchemaDrift(model, wire, kind, detail, followed=refs and key in _FOLLOWED)
                for key, kind, detail in _differences(ours[wire], prop, f)
            ]
    return out
