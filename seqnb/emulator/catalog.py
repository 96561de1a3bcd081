"""The model catalog RunComfy serves at ``{model_api_base}/models``: entries, search and pages, as pure functions.

Shapes (RunComfy's docs and its CLI): an entry carries ``model_id``, ``display_name``,
``categories``, ``base_price_usd`` and ``price_unit`` (the CLI shows ``$<price>/<unit>``), plus
``input_schema`` when asked (RunComfy's own integrations read that name): the one in the model's
file (``seqnb/model/models/``), as its page publishes it, its references field (``format:
image_uris``, ``maxItems``) given the emulator's own ``validations`` (``VALIDATIONS``), as RunComfy's
catalog gives a media field its rules. The list answers ``{"models": [...], "total": N}``.
UNCONFIRMED, and so the emulator's choice: the ``kind`` values (``image`` here), the default and
largest ``limit`` (20 and 100), that ``search`` is a case-insensitive substring match on id, name
and categories, and the rules of ``VALIDATIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..model.spec import ModelSpec, spec_from_schema

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "VALIDATIONS",
    "CatalogQuery",
    "categories",
    "entry",
    "input_schema",
    "page",
    "served_spec",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_CATEGORIES = ("text-to-image",)
_KIND = "image"

VALIDATIONS: tuple[dict[str, Any], ...] = (
    {
        "validation_rule": "width_pixels>",
        "validation_value": 14,
        "validation_error": "Each reference image must be more than 14 pixels wide.",
    },
    {
        "validation_rule": "height_pixels>",
        "validation_value": 14,
        "validation_error": "Each reference image must be more than 14 pixels high.",
    },
    {
        "validation_rule": "width/height<",
        "validation_value": 16,
        "validation_error": "The aspect ratio (width/height) of each reference image must be below 16.",
    },
    {
        "validation_rule": "width/height>",
        "validation_value": 0.0625,
        "validation_error": "The aspect ratio (width/height) of each reference image must be above 1/16.",
    },
)
"""The emulator's own rules for each reference image of the edit-sequential models, served in its catalog's schema and
enforced on the images a submit carries inline (RunComfy's own rules for these models are not published)."""
_SERVED: dict[tuple[str, str | None], ModelSpec] = {}


def input_schema(spec: ModelSpec) -> dict[str, Any]:
    """The input schema the emulator serves for a model: its file's, the references field given ``VALIDATIONS``."""
    schema = spec.input_schema()
    refs = spec.references_field
    if refs is not None and not refs.validations:
        schema["properties"][refs.wire]["validations"] = [dict(v) for v in VALIDATIONS]
    return schema


def served_spec(spec: ModelSpec) -> ModelSpec:
    """The spec of the schema the emulator serves (``input_schema``): the rules its submits are held to."""
    key = (spec.id, spec.schema_json)
    if key not in _SERVED:
        _SERVED[key] = spec_from_schema(spec, input_schema(spec))
    return _SERVED[key]


def entry(spec: ModelSpec, price: Decimal, *, include_schema: bool) -> dict[str, Any]:
    """One catalog entry; ``price`` is USD per image."""
    out: dict[str, Any] = {
        "model_id": spec.id,
        "display_name": spec.title,
        "categories": list(_CATEGORIES),
        "kind": _KIND,
        "base_price_usd": float(price),
        "price_unit": "image",
    }
    if include_schema:
        out["input_schema"] = input_schema(spec)
    return out


def categories(specs: list[ModelSpec]) -> list[str]:
    """Every category some model is in."""
    return sorted(set(_CATEGORIES)) if specs else []


@dataclass(frozen=True)
class CatalogQuery:
    """The list route's query parameters, checked: ``CatalogQuery.parse`` raises ValueError naming the bad one."""

    search: str = ""
    category: str = ""
    kind: str = ""
    include_schema: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> CatalogQuery:
        def whole(name: str, default: int, low: int, high: int | None) -> int:
            raw = params.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
                top = f" to {high}" if high is not None else " or more"
                raise ValueError(f"{name} must be a whole number from {low}{top}, got {raw!r}")
            return int(raw)

        flag = params.get("include_schema", "").strip().lower()
        if flag not in ("", "true", "false", "1", "0"):
            raise ValueError(f"include_schema must be true or false, got {flag!r}")
        return cls(
            search=params.get("search", "").strip(),
            category=params.get("category", "").strip(),
            kind=params.get("kind", "").strip(),
            include_schema=flag in ("true", "1"),
            limit=whole("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=whole("offset", 0, 0, None),
        )

    def matches(self, spec: ModelSpec) -> bool:
        if self.category and self.category not in _CATEGORIES:
            return False
        if self.kind and self.kind != _KIND:
            return False
        if self.search:
            needle = self.search.lower()
            haystack = (spec.id, spec.title, *spec.aliases, *_CATEGORIES)
            return any(needle in text.lower() for text in haystack)
        return True


def page(specs: list[ModelSpec], query: CatalogQuery, price: Callable[[str], Decimal]) -> dict[str, Any]:
    """``{"models": [...], "total": N}``: the entries matching ``query``, one page of them."""
    found = [s for s in specs if query.matches(s)]
    shown = found[query.offset : query.offset + query.limit]
    return {"models": [entry(s, price(s.id), include_schema=query.include_schema) for s in shown], "total": len(found)}
