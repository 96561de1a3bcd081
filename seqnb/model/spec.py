"""What may be asked of each model: ``ModelSpec`` / ``FieldSpec``, drawn from one JSON file per model.

Each model is one file in ``seqnb/model/models/`` (package data): its id, names and price, the roles its
wire fields play, the limits its page states only in words, what no page confirms, and its
``input_schema`` (the page's own, verbatim, or seqnb's drawing where the page shows none).
``spec_from_schema`` is the one way a spec is made from a schema: from those files, and from a live
catalog schema alike. Adding a model is adding a file (or ``register(path)``). The files are read on
first use, never on ``import seqnb``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from ..errors import UnknownModelError

__all__ = [
    "COUNT_RANGE",
    "MAX_REFERENCE_BYTES",
    "FieldSpec",
    "ModelSpec",
    "Role",
    "Validation",
    "get_model",
    "load_model",
    "models",
    "register",
    "size_dimensions",
    "spec_from_schema",
    "validations_of",
    "with_live_reference_limits",
]

Role = Literal["prompt", "count", "size", "seed", "optimize", "references"]
"""The shared user vocabulary; each model maps these roles to its own wire names."""

ROLES: tuple[Role, ...] = ("prompt", "count", "size", "seed", "optimize", "references")
COUNT_RANGE = range(1, 16)
MAX_REFERENCE_BYTES = 50 * 1024 * 1024
"""The largest reference image the seed pages allow ("File inputs": images up to 50 MB)."""
MODEL_FILES = Path(__file__).with_name("models")
"""The built-in models, one JSON file each."""


class Validation(NamedTuple):
    """One of the service's own rules for a field (a catalog schema's ``validations``), with its error text."""

    rule: str
    """``width_pixels>``, ``width/height<``, ..."""
    value: Any
    error: str


@dataclass(frozen=True)
class FieldSpec:
    """One input field of a model, as its input schema defines it."""

    wire: str
    kind: Literal["string", "integer", "array"]
    """``array``: a list of strings (the reference image URLs)."""
    title: str
    role: Role | None = None
    enum: tuple[Any, ...] | None = None
    default: Any = None
    required: bool = False
    max_length: int | None = None
    """Longest accepted string, in characters (code points), whether from the schema or the page's words."""
    max_length_origin: Literal["schema", "page"] = "schema"
    max_items: int | None = None
    """Most items an array field takes."""
    description: str = ""
    unconfirmed: bool = False
    """True when the field's limits and defaults are borrowed, not read in its page's schema."""
    format: str | None = None
    """The schema's ``format`` (``image_uris``: a list of image URLs)."""
    validations: tuple[Validation, ...] = ()
    """The service's own rules, as a live catalog schema gives them (the pages give none)."""

    @property
    def name(self) -> str:
        """The name users know the field by: its role when it has one, else its wire name."""
        return self.role or self.wire


@dataclass(frozen=True)
class ModelSpec:
    """Everything seqnb knows about one model endpoint, as data."""

    id: str
    title: str
    aliases: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    price_per_image: Decimal
    currency: str = "USD"
    price_source: str = "BytePlus list price; RunComfy's own price is unconfirmed"
    notes: str = ""
    max_total_images: int | None = None
    """References plus requested images at most this many (None: no such rule)."""
    unconfirmed: tuple[str, ...] = ()
    """The facts of this spec that no page confirms (limits borrowed from other hosts or a sibling)."""
    schema_json: str | None = field(default=None, repr=False, compare=False)
    """The input schema the fields were drawn from, as JSON text (None: a spec written by hand)."""
    _by_wire: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)
    _by_role: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_wire", {f.wire: f for f in self.fields})
        object.__setattr__(self, "_by_role", {f.role: f for f in self.fields if f.role})
        for needed in ("prompt", "count"):
            if needed not in self._by_role:
                raise ValueError(f"model {self.id!r} needs a field with role {needed!r}")

    @property
    def short_name(self) -> str:
        """The first alias (``seedream-4.5``), for tables and captions."""
        return self.aliases[0] if self.aliases else self.id

    def field(self, wire: str) -> FieldSpec | None:
        """The field with this wire name, or None."""
        return self._by_wire.get(wire)

    def role(self, role: str) -> FieldSpec | None:
        """The field that plays this role (``prompt``, ``count``, ...), or None."""
        return self._by_role.get(role)

    @property
    def prompt_field(self) -> FieldSpec:
        return self._by_role["prompt"]

    @property
    def count_field(self) -> FieldSpec:
        return self._by_role["count"]

    @property
    def size_field(self) -> FieldSpec | None:
        return self._by_role.get("size")

    @property
    def references_field(self) -> FieldSpec | None:
        """The field that carries reference image URLs (edit-sequential models), or None."""
        return self._by_role.get("references")

    @property
    def max_references(self) -> int | None:
        f = self.references_field
        return f.max_items if f else None

    def input_schema(self) -> dict[str, Any]:
        """The model's input JSON schema, a fresh copy: the one its fields were drawn from, else drawn from them."""
        if self.schema_json is not None:
            return dict(json.loads(self.schema_json))
        return _drawn_schema(self.fields)

    def with_reference_limits(
        self,
        max_references: int | None = None,
        max_total: int | None = None,
        validations: tuple[Validation, ...] | None = None,
    ) -> ModelSpec:
        """A copy with other reference limits: the most references, references plus images at most, the service's
        rules for each reference image (a live catalog's, or ``register``'s when the service's are known to differ);
        None keeps the current one."""
        f = self.references_field
        if f is None:
            raise ValueError(f"{self.short_name} takes no references")
        limit = max_references if max_references is not None else f.max_items
        rules = validations if validations is not None else f.validations
        schema = self.input_schema()
        prop = schema["properties"][f.wire]
        prop["maxItems"] = limit
        prop.pop("validations", None)
        if rules:
            prop["validations"] = [dict(zip(_VALIDATION_KEYS, v, strict=True)) for v in rules]
        changed = replace(f, max_items=limit, validations=rules)
        return replace(
            self,
            fields=tuple(changed if g is f else g for g in self.fields),
            max_total_images=max_total if max_total is not None else self.max_total_images,
            schema_json=json.dumps(schema),
        )

    @property
    def sizes(self) -> tuple[str, ...]:
        """The size options this model accepts, in the page's order."""
        f = self.size_field
        return tuple(f.enum) if f and f.enum else ()

    def default(self, role: str) -> Any:
        """The server-side default for a role, or None when the page gives none."""
        f = self._by_role.get(role)
        return f.default if f else None

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self.fields)


# --- specs drawn from schemas ---------------------------------------------------------------------

_FILE_KEYS: dict[str, type] = {
    **dict.fromkeys(("id", "title", "price_per_image", "currency", "price_source", "notes", "schema_source"), str),
    **dict.fromkeys(("aliases", "unconfirmed", "unconfirmed_fields"), list),
    **dict.fromkeys(("roles", "page_limits", "input_schema"), dict),
    "max_total_images": int,
}
"""A model file's keys and their JSON types (``id``, ``title``, ``price_per_image`` and ``roles`` are needed)."""


def _check_about(about: Mapping[str, Any]) -> None:
    """``ValueError`` naming the first unknown, missing or mistyped key of a model's description."""
    for key, value in about.items():
        if key not in _FILE_KEYS:
            raise ValueError(f"unknown key {key!r}; a model file has {', '.join(_FILE_KEYS)}")
        if value is not None and not isinstance(value, _FILE_KEYS[key]):
            raise ValueError(f"{key!r} must be a JSON {_FILE_KEYS[key].__name__}, got {value!r}")
    for key in ("id", "title", "price_per_image", "roles"):
        if about.get(key) is None:
            raise ValueError(f"it has no {key!r}")
    for role in about["roles"]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} in 'roles'; the roles are {', '.join(ROLES)}")
    price = about["price_per_image"]
    try:
        Decimal(price)
    except ArithmeticError:
        raise ValueError(f"'price_per_image' must be an amount such as \"0.04\", got {price!r}") from None


def _about(spec: ModelSpec) -> dict[str, Any]:
    """What a spec says besides its fields, as a model file says it (a live schema confirms every field)."""
    return {
        "id": spec.id,
        "title": spec.title,
        "aliases": list(spec.aliases),
        "price_per_image": str(spec.price_per_image),
        "currency": spec.currency,
        "price_source": spec.price_source,
        "notes": spec.notes,
        "roles": {f.role: f.wire for f in spec if f.role},
        "page_limits": {f.wire: {"maxLength": f.max_length} for f in spec if f.max_length_origin == "page"},
        "max_total_images": spec.max_total_images,
        "unconfirmed": list(spec.unconfirmed),
    }


_VALIDATION_KEYS = _RULE, _VALUE, _ERROR = ("validation_rule", "validation_value", "validation_error")


def validations_of(raw: Any) -> tuple[Validation, ...]:
    """A schema's ``validations`` read leniently: entries without a rule are left out."""
    rules = [v for v in raw if isinstance(v, Mapping) and v.get(_RULE)] if isinstance(raw, list) else []
    return tuple(Validation(str(v[_RULE]), v.get(_VALUE), str(v.get(_ERROR) or "")) for v in rules)


def _field(wire: str, prop: Any, about: Mapping[str, Any], required: bool) -> FieldSpec:
    if not isinstance(prop, Mapping):
        raise ValueError(f"field {wire!r} is not an object")
    kind = prop.get("type")
    if kind not in ("string", "integer", "array"):
        raise ValueError(f"field {wire!r} has type {kind!r}; seqnb validates strings, integers and arrays only")
    role = next((r for r, w in about["roles"].items() if w == wire), None)
    enum, max_length, max_items, form = (prop.get(k) for k in ("enum", "maxLength", "maxItems", "format"))
    page_limit = (about.get("page_limits") or {}).get(wire)
    origin: Literal["schema", "page"] = "schema"
    if max_length is None and isinstance(page_limit, Mapping):
        max_length, origin = page_limit.get("maxLength"), "page"
    return FieldSpec(
        wire=wire,
        kind=kind,
        title=str(prop.get("title") or wire),
        role=cast(Role | None, role),
        enum=tuple(enum) if isinstance(enum, list) else None,
        default=prop.get("default"),
        required=required,
        max_length=max_length if isinstance(max_length, int) else None,
        max_length_origin=origin,
        max_items=max_items if isinstance(max_items, int) else None,
        description=str(prop.get("description") or ""),
        unconfirmed=wire in (about.get("unconfirmed_fields") or ()),
        format=form if isinstance(form, str) else None,
        validations=validations_of(prop.get("validations")),
    )


def spec_from_schema(model: ModelSpec | Mapping[str, Any], schema: Any) -> ModelSpec:
    """A spec drawn from an input schema, the rest from ``model``: a model file, or the spec a live schema redraws
    (fields in the schema's order, roles kept by wire name, a page's worded limit where the schema sets none);
    ``ValueError`` naming what cannot be used."""
    about = _about(model) if isinstance(model, ModelSpec) else model
    _check_about(about)
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        raise ValueError("the input schema is not a JSON schema object with properties")
    required_list = schema.get("required", [])
    required = {str(r) for r in required_list} if isinstance(required_list, list) else set()
    fields = tuple(_field(str(w), prop, about, str(w) in required) for w, prop in schema["properties"].items())
    return ModelSpec(
        id=about["id"],
        title=about["title"],
        aliases=tuple(str(a) for a in about.get("aliases") or ()),
        fields=fields,
        price_per_image=Decimal(about["price_per_image"]),
        currency=about.get("currency") or "USD",
        price_source=about.get("price_source") or ModelSpec.price_source,
        notes=about.get("notes") or "",
        max_total_images=about.get("max_total_images"),
        unconfirmed=tuple(str(u) for u in about.get("unconfirmed") or ()),
        schema_json=json.dumps(schema),
    )


def with_live_reference_limits(spec: ModelSpec, schema: Any) -> ModelSpec | None:
    """The spec with the reference rules a live input schema gives its references field (``maxItems``,
    ``validations``), or None when it gives none (no such field, or neither rule); the rest stays the spec's."""
    f = spec.references_field
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    prop = props.get(f.wire) if f is not None and isinstance(props, Mapping) else None
    if not isinstance(prop, Mapping):
        return None
    most = prop.get("maxItems")
    most = most if isinstance(most, int) and not isinstance(most, bool) and most >= 0 else None
    rules = validations_of(prop.get("validations")) if "validations" in prop else None
    if most is None and rules is None:
        return None
    return spec.with_reference_limits(max_references=most, validations=rules)


def _drawn_schema(fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """An input schema drawn from a hand-written spec's fields (a page's worded limit stays out, as in the files)."""
    properties: dict[str, Any] = {}
    for f in fields:
        drawn = {
            "title": f.title,
            "description": f.description,
            "type": f.kind,
            "items": {"type": "string"} if f.kind == "array" else None,
            "format": f.format,
            "enum": list(f.enum) if f.enum is not None else None,
            "default": f.default,
            "maxLength": f.max_length if f.max_length_origin == "schema" else None,
            "maxItems": f.max_items,
            "validations": [dict(zip(_VALIDATION_KEYS, v, strict=True)) for v in f.validations] or None,
        }
        properties[f.wire] = {k: v for k, v in drawn.items() if v is not None}
    required = [f.wire for f in fields if f.required]
    return {"type": "object", "title": "Input", "required": required, "properties": properties}


def load_model(path: str | os.PathLike[str]) -> ModelSpec:
    """The spec a model file describes; ``ValueError`` naming the file and what is wrong in it."""
    path = Path(path)
    try:
        about = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(about, dict):
            raise ValueError("it is not a JSON object")
        _check_about(about)
        schema = about.get("input_schema")
        missing = [w for w in about["roles"].values() if w not in ((schema or {}).get("properties") or {})]
        if missing:
            raise ValueError(f"'roles' names {', '.join(map(repr, missing))}, not in its input_schema's properties")
        return spec_from_schema(about, schema)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model file {path}: {exc}") from None


# --- the registry ---------------------------------------------------------------------------------


@functools.cache
def _registry() -> list[ModelSpec]:
    """The known models: the built-in files, read on first use (models without references first, each by id)."""
    found = [load_model(path) for path in MODEL_FILES.glob("*.json")]
    return sorted(found, key=lambda m: (m.references_field is not None, m.id))


def __getattr__(name: str) -> Any:
    """``MODELS``, the registry list itself, loaded on first use."""
    if name == "MODELS":
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def models() -> list[ModelSpec]:
    """Every model seqnb knows, in registration order."""
    return list(_registry())


def register(spec: ModelSpec | str | os.PathLike[str]) -> ModelSpec:
    """Add (or replace, by id) a model: a spec, or the path of a model file; returns its spec."""
    if not isinstance(spec, ModelSpec):
        spec = load_model(spec)
    registry = _registry()
    registry[:] = [m for m in registry if m.id != spec.id] + [spec]
    return spec


def get_model(name: str | ModelSpec) -> ModelSpec:
    """Look a model up by full id or alias (case-insensitive)."""
    if isinstance(name, ModelSpec):
        return name
    registry = _registry()
    wanted = name.strip().strip("/").lower() if isinstance(name, str) else None
    for spec in registry:
        if wanted == spec.id or wanted in spec.aliases:
            return spec
    shown = name if isinstance(name, str) else repr(name)
    raise UnknownModelError(shown, [m.short_name for m in registry] + [m.id for m in registry])


_DIMS = re.compile(r"^\s*(\d+)\s*[:x×*]\s*(\d+)")

# Width and height the model picks for 2K / 4K from the aspect ratio described in the prompt.
_AUTO_BASE = {"2K": 1, "4K": 2}
_ASPECT_WORDS: tuple[tuple[re.Pattern[str], tuple[int, int]], ...] = (
    (re.compile(r"21\s*:\s*9|ultra[- ]?wide|cinemascope|panoram", re.I), (3024, 1296)),
    (re.compile(r"16\s*:\s*9|wide ?screen|landscape|horizontal|banner|youtube", re.I), (2560, 1440)),
    (re.compile(r"9\s*:\s*16|vertical|portrait|phone|story|stories|reel|tiktok", re.I), (1440, 2560)),
    (re.compile(r"4\s*:\s*3", re.I), (2304, 1728)),
    (re.compile(r"3\s*:\s*4", re.I), (1728, 2304)),
    (re.compile(r"3\s*:\s*2", re.I), (2496, 1664)),
    (re.compile(r"2\s*:\s*3|poster", re.I), (1664, 2496)),
)


def size_dimensions(size: str, prompt: str = "") -> tuple[int, int]:
    """Pixel width and height of a size option; for 2K/4K, guessed from aspect words in the prompt."""
    m = _DIMS.match(size)
    if m:
        return int(m.group(1)), int(m.group(2))
    scale = _AUTO_BASE.get(size.strip().upper())
    if scale is None:
        raise ValueError(f"size {size!r} names no dimensions")
    width, height = 2048, 2048
    for pattern, dims in _ASPECT_WORDS:
        if pattern.search(prompt):
            width, height = dims
            break
    return width * scale, height * scale
