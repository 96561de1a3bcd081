"""Schema drift: RunComfy's live input schema compared with seqnb's built-in spec (no I/O).

Every field added, removed or changed (type, enum, limits, required, default) is one
``SchemaDrift``, warned once per model as a ``SchemaDriftWarning``. Requests still follow the
built-in spec unless a client opts into the live schema (``live_schema=True``: validation then
uses ``spec_from_schema``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...model.spec import FieldSpec, ModelSpec
from .entry import CatalogWarning

__all__ = ["DriftKind", "SchemaDrift", "SchemaDriftWarning", "schema_drift"]


class SchemaDriftWarning(CatalogWarning):
    """RunComfy's live input schema differs from seqnb's built-in spec."""


DriftKind = Literal["schema", "added", "removed", "type", "enum", "limit", "required", "default"]
_LIMITS = ("maxLength", "minLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


@dataclass(frozen=True)
class SchemaDrift:
    """One difference between the live input schema and seqnb's built-in spec."""

    model: str
    field: str
    kind: DriftKind
    detail: str

    def __str__(self) -> str:
        where = f"field {self.field!r}" if self.field else "input schema"
        return (
            f"{self.model}: RunComfy's live {where} differs from seqnb's built-in spec: {self.detail}. "
            "seqnb still validates with its built-in spec (live_schema=True uses the live one)"
        )


def _show(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def _agrees(name: str, limit: float, numbers: list[int]) -> bool:
    """Whether a numeric bound is already implied by an enum of whole numbers."""
    if name == "minimum":
        return limit <= min(numbers)
    if name == "exclusiveMinimum":
        return limit < min(numbers)
    if name == "maximum":
        return limit >= max(numbers)
    return name == "exclusiveMaximum" and limit > max(numbers)


def _field_drift(model: str, f: FieldSpec, prop: Mapping[str, Any], required: bool) -> list[SchemaDrift]:
    out: list[SchemaDrift] = []

    def add(kind: DriftKind, detail: str) -> None:
        out.append(SchemaDrift(model, f.wire, kind, detail))

    live_type = prop.get("type")
    if live_type is not None and live_type != f.kind:
        add("type", f"type is {live_type!r} live, {f.kind!r} built in")
    live_enum = prop.get("enum")
    if live_enum is not None or f.enum is not None:
        live = list(live_enum) if isinstance(live_enum, list) else None
        ours = list(f.enum) if f.enum is not None else None
        if live is None:
            add("enum", "the live schema no longer restricts it to a list of values")
        elif ours is None:
            add("enum", f"the live schema restricts it to {_show(live)}")
        else:
            added = [v for v in live if v not in ours]
            removed = [v for v in ours if v not in live]
            if added or removed:
                parts = ([f"adds {_show(added)}"] if added else []) + ([f"drops {_show(removed)}"] if removed else [])
                add("enum", "the live enum " + " and ".join(parts))
    for name in _LIMITS:
        live_limit = prop.get(name)
        if name == "maxLength":
            if f.max_length_origin == "page":  # our limit comes from the page's words, not its schema
                if isinstance(live_limit, int) and f.max_length is not None and live_limit < f.max_length:
                    add("limit", f"maxLength is {live_limit} live; seqnb allows {f.max_length} (from the page)")
                continue
            if live_limit != f.max_length:
                add("limit", f"maxLength is {live_limit} live, {f.max_length} built in")
            continue
        if live_limit is None:
            continue
        numbers = [v for v in (f.enum or ()) if isinstance(v, int)]
        if numbers and isinstance(live_limit, int | float) and _agrees(name, live_limit, numbers):
            continue  # a bound the enum already keeps
        add("limit", f"the live schema sets {name} {live_limit!r}, which seqnb does not check")
    live_items = prop.get("maxItems")
    if f.kind == "array" and live_items != f.max_items:
        borrowed = " (the built-in limit is UNCONFIRMED)" if f.unconfirmed else ""
        add("limit", f"maxItems is {live_items} live, {f.max_items} built in{borrowed}")
    if required != f.required:
        add("required", "required live, optional built in" if required else "optional live, required built in")
    if "default" in prop and prop.get("default") != f.default:
        add("default", f"default is {prop.get('default')!r} live, {f.default!r} built in")
    return out


def schema_drift(spec: ModelSpec, schema: Any) -> list[SchemaDrift]:
    """Every difference between a live input schema and the built-in spec; never raises."""
    model = spec.id
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return [SchemaDrift(model, "", "schema", "it is not a JSON schema object with properties")]
    props: Mapping[str, Any] = schema["properties"]
    required_list = schema.get("required", [])
    required = {str(r) for r in required_list} if isinstance(required_list, list) else set()
    out: list[SchemaDrift] = []
    for wire, prop in props.items():
        f = spec.field(str(wire))
        if f is None:
            kind = prop.get("type") if isinstance(prop, Mapping) else None
            out.append(
                SchemaDrift(
                    model,
                    str(wire),
                    "added",
                    f"the live schema has a field seqnb does not know (type {kind!r}); seqnb refuses it",
                )
            )
        elif not isinstance(prop, Mapping):
            out.append(SchemaDrift(model, f.wire, "schema", f"its live definition is not an object: {prop!r}"))
        else:
            out.extend(_field_drift(model, f, prop, f.wire in required))
    for f in spec:
        if f.wire not in props:
            out.append(
                SchemaDrift(model, f.wire, "removed", "the live schema no longer has it; seqnb still sends it when set")
            )
    return out
