"""What may be asked of each model: declarative specs, taken from the model pages (kept in tests/fixtures/seeds).

Adding a model is a data change: append a ``ModelSpec`` to ``MODELS`` (or call ``register``).
Nothing in this module does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from ..errors import UnknownModelError

__all__ = [
    "COUNT_RANGE",
    "MAX_REFERENCE_BYTES",
    "MODELS",
    "FieldSpec",
    "ModelSpec",
    "Role",
    "get_model",
    "models",
    "register",
    "size_dimensions",
]

Role = Literal["prompt", "count", "size", "seed", "optimize", "references"]
"""The shared user vocabulary; each model maps these roles to its own wire names."""

ROLES: tuple[Role, ...] = ("prompt", "count", "size", "seed", "optimize", "references")
COUNT_RANGE = range(1, 16)
MAX_REFERENCE_BYTES = 50 * 1024 * 1024
"""The largest reference image the seed pages allow ("File inputs": images up to 50 MB)."""


@dataclass(frozen=True)
class FieldSpec:
    """One input field of a model, as its page's input schema defines it."""

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

    def with_reference_limits(self, max_references: int | None = None, max_total: int | None = None) -> ModelSpec:
        """A copy with other reference limits (for ``register``, when the service's are known to differ)."""
        f = self.references_field
        if f is None:
            raise ValueError(f"{self.short_name} takes no references")
        fields = tuple(
            replace(g, max_items=max_references if max_references is not None else g.max_items) if g is f else g
            for g in self.fields
        )
        total = max_total if max_total is not None else self.max_total_images
        return replace(self, fields=fields, max_total_images=total)

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


_COUNT_DESCRIPTION = (
    "This value must align with the number of images specified in the prompt. "
    "The final price will be calculated based on this value."
)

_SIZES_4_0 = (
    "2048:2048 (1:1)",
    "2304:1728 (4:3)",
    "1728:2304 (3:4)",
    "2560:1440 (16:9)",
    "1440:2560 (9:16)",
    "2496:1664 (3:2)",
    "1664:2496 (2:3)",
    "3024:1296 (21:9)",
)

_SIZES_4_5 = (
    "2K",
    "4K",
    "2048x2048 (1:1)",
    "2304x1728 (4:3)",
    "1728x2304 (3:4)",
    "2560x1440 (16:9)",
    "1440x2560 (9:16)",
    "2496x1664 (3:2)",
    "1664x2496 (2:3)",
    "3024x1296 (21:9)",
    "4096x4096 (1:1)",
)

SEEDREAM_4_0 = ModelSpec(
    id="bytedance/seedream-4-0/sequential",
    title="Seedream 4.0 sequential",
    aliases=("seedream-4.0", "seedream-4-0", "4.0"),
    price_per_image=Decimal("0.03"),
    fields=(
        FieldSpec(
            wire="text",
            role="prompt",
            kind="string",
            title="Prompt",
            required=True,
            max_length=600,
            default="Generate 3 images of a beautiful sunset over a calm ocean.",
            description="Must state the number of images to generate.",
        ),
        FieldSpec(
            wire="image_size",
            role="size",
            kind="string",
            title="Aspect Ratio (W:H)",
            enum=_SIZES_4_0,
            default="2560:1440 (16:9)",
        ),
        FieldSpec(wire="seed", role="seed", kind="integer", title="Seed"),
        FieldSpec(
            wire="sequential_image_generation_options",
            role="count",
            kind="integer",
            title="Maximum Number of Output Images",
            enum=tuple(COUNT_RANGE),
            default=3,
            description=_COUNT_DESCRIPTION,
        ),
        FieldSpec(
            wire="optimize_prompt_options",
            role="optimize",
            kind="string",
            title="Optimize Prompt",
            enum=("fast", "standard"),
            default="fast",
            description="standard: higher quality, slower; fast: quicker, lower quality.",
        ),
    ),
)

SEEDREAM_4_5 = ModelSpec(
    id="bytedance/seedream-4-5/sequential",
    title="Seedream 4.5 sequential",
    aliases=("seedream-4.5", "seedream-4-5", "4.5"),
    price_per_image=Decimal("0.04"),
    notes="For 2K and 4K the model picks width and height: describe the aspect ratio in the prompt.",
    fields=(
        FieldSpec(
            wire="prompt",
            role="prompt",
            kind="string",
            title="Prompt",
            required=True,
            max_length=599,
            max_length_origin="page",
            default="Generate 3 images of a beautiful sunset over a calm ocean.",
            description="Must be less than 600 characters and state the number of images.",
        ),
        FieldSpec(
            wire="sequential_image_generation_options",
            role="count",
            kind="integer",
            title="Maximum Number of Output Images",
            enum=tuple(COUNT_RANGE),
            default=3,
            required=True,
            description=_COUNT_DESCRIPTION,
        ),
        FieldSpec(
            wire="resolution",
            role="size",
            kind="string",
            title="Resolution",
            enum=_SIZES_4_5,
            default="2048x2048 (1:1)",
            description="2K/4K let the model choose width and height from the prompt.",
        ),
        FieldSpec(wire="seed", role="seed", kind="integer", title="Seed", default=41722289),
    ),
)

_EDIT_UNCONFIRMED = (
    "the most references (from other hosts of the model)",
    "references plus images at most 15 (from other hosts of the model)",
    "the size enum and the seed default (the sequential sibling's)",
)


def _edit_sibling(sibling: ModelSpec, max_references: int) -> ModelSpec:
    """The edit-sequential sibling of a sequential model: its fields plus ``images``, the reference URLs."""
    images = FieldSpec(
        wire="images",
        role="references",
        kind="array",
        title="Reference images",
        required=True,
        max_items=max_references,
        unconfirmed=True,
        description="Public HTTPS URLs of reference images, up to 50 MB each.",
    )
    version = sibling.aliases[0].removeprefix("seedream-")
    return ModelSpec(
        id=sibling.id.replace("/sequential", "/edit-sequential"),
        title=sibling.title.replace("sequential", "edit-sequential"),
        aliases=(*(f"{a}-edit" for a in sibling.aliases[:2]), f"{version}-edit"),
        fields=(images, *(replace(f, unconfirmed=f.role in ("size", "seed")) for f in sibling.fields)),
        price_per_image=sibling.price_per_image,
        price_source=sibling.price_source,
        notes="A series kept consistent with reference images. " + sibling.notes,
        max_total_images=15,
        unconfirmed=_EDIT_UNCONFIRMED,
    )


SEEDREAM_4_0_EDIT = _edit_sibling(SEEDREAM_4_0, 10)
SEEDREAM_4_5_EDIT = _edit_sibling(SEEDREAM_4_5, 14)

MODELS: list[ModelSpec] = [SEEDREAM_4_0, SEEDREAM_4_5, SEEDREAM_4_0_EDIT, SEEDREAM_4_5_EDIT]


def models() -> list[ModelSpec]:
    """Every model seqnb knows, in registration order."""
    return list(MODELS)


def register(spec: ModelSpec) -> ModelSpec:
    """Add (or replace, by id) a model spec; returns it."""
    MODELS[:] = [m for m in MODELS if m.id != spec.id] + [spec]
    return spec


def get_model(name: str | ModelSpec) -> ModelSpec:
    """Look a model up by full id or alias (case-insensitive)."""
    if isinstance(name, ModelSpec):
        return name
    if not isinstance(name, str):
        raise UnknownModelError(repr(name), [m.short_name for m in MODELS] + [m.id for m in MODELS])
    wanted = name.strip().strip("/").lower()
    for spec in MODELS:
        if wanted == spec.id or wanted in spec.aliases:
            return spec
    raise UnknownModelError(name, [m.short_name for m in MODELS] + [m.id for m in MODELS])


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
