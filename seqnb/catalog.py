"""RunComfy's model catalog: each model's entry, its price per image and its live input schema.

``GET {model_api_base}/models/{model_id}`` answers ``model_id``, ``display_name``, ``categories``,
``base_price_usd``, ``price_unit`` and (asked with ``include_schema=true``) ``input_schema``
(API-NOTES). seqnb uses it for two things:

- **prices**: ``base_price_usd`` per ``price_unit`` becomes the ``Price`` of every estimate, its
  source saying "RunComfy catalog, fetched ..."; a unit other than ``image`` is not used (seqnb
  estimates per image) and is said so. A catalog that cannot be read within ``DEADLINE`` seconds
  never blocks anything: the built-in list price is used, its source saying why.
- **schema drift**: the live input schema is compared with seqnb's built-in spec; every field
  added, removed or changed (type, enum, limits, required, default) is one ``SchemaDriftWarning``.
  Requests still follow the built-in spec unless a client opts into the live schema
  (``live_schema=True``: validation then uses ``spec_from_schema``).

Entries are cached on disk for a day (``catalog_cache_path``: ``$SEQNB_CATALOG_CACHE``, else
``catalog.json`` in ``$SEQNB_CACHE``, else ``~/.cache/seqnb/catalog.json``), keyed by API base
and model id, written atomically. The pure functions (``CatalogEntry.from_json``,
``price_of``, ``schema_drift``, ``spec_from_schema``) do no I/O; ``Catalog`` is the thin shell.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from . import errors
from .auth import Secret
from .pricing import Cost, Price
from .request import Request
from .spec import FieldSpec, ModelSpec, get_model
from .transport import get_once

__all__ = [
    "DEADLINE",
    "TTL",
    "Catalog",
    "CatalogCache",
    "CatalogEntry",
    "CatalogWarning",
    "PricedRequest",
    "SchemaDrift",
    "SchemaDriftWarning",
    "builtin_price",
    "catalog_cache_path",
    "fetched_text",
    "price_of",
    "run_detached",
    "schema_drift",
    "spec_from_schema",
    "why_unavailable",
]

TTL = 24 * 3600.0
"""Seconds a catalog entry is trusted (one day); ``refresh=True`` reads it again sooner."""
DEADLINE = 3.0
"""Seconds a catalog read may take in all before seqnb falls back to the built-in price."""
RETRY_FAILED = 900.0
"""Seconds before a client tries again to read a catalog that failed (unless asked to refresh)."""
PRICE_UNIT = "image"

T = TypeVar("T")


class CatalogWarning(UserWarning):
    """The catalog could not be used as is (unreachable, unreadable, priced in another unit)."""


class SchemaDriftWarning(CatalogWarning):
    """RunComfy's live input schema differs from seqnb's built-in spec."""


def fetched_text(at: float) -> str:
    """``fetched 2025-06-01 14:03 UTC``."""
    return "fetched " + datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- entries (pure) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    """One model's catalog entry, as fetched from ``api_base`` at ``fetched_at``."""

    model_id: str
    display_name: str
    categories: tuple[str, ...]
    base_price_usd: Decimal | None
    price_unit: str | None
    input_schema: Mapping[str, Any] | None
    fetched_at: float
    api_base: str
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, body: Any, *, api_base: str, fetched_at: float) -> CatalogEntry:
        """An entry from the service's answer; ``ValueError`` naming what is missing or malformed."""
        if not isinstance(body, Mapping):
            raise ValueError(f"a catalog entry must be a JSON object, got {type(body).__name__}")
        model_id = body.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("the catalog entry has no model_id")
        price: Decimal | None = None
        given = body.get("base_price_usd")
        if given is not None and not isinstance(given, bool):
            try:
                price = Decimal(str(given))
            except InvalidOperation:
                price = None
            if price is not None and (not price.is_finite() or price < 0):
                price = None
        unit = body.get("price_unit")
        schema = body.get("input_schema")
        categories = body.get("categories")
        return cls(
            model_id=model_id,
            display_name=str(body.get("display_name") or model_id),
            categories=tuple(str(c) for c in categories) if isinstance(categories, list) else (),
            base_price_usd=price,
            price_unit=str(unit).strip() if unit is not None else None,
            input_schema=schema if isinstance(schema, Mapping) else None,
            fetched_at=fetched_at,
            api_base=api_base,
            raw=dict(body),
        )

    def fresh(self, now: float, ttl: float = TTL) -> bool:
        return 0 <= now - self.fetched_at < ttl

    def price_text(self) -> str:
        """As RunComfy's CLI shows it: ``$0.04/image``."""
        if self.base_price_usd is None:
            return "no price"
        return f"${self.base_price_usd.normalize():f}/{self.price_unit or '?'}"


def builtin_price(model: str | ModelSpec, why: str) -> Price:
    """The spec's built-in list price, its source saying why the catalog's is not used."""
    spec = get_model(model)
    return Price(spec.price_per_image, spec.currency, f"built-in list price, {why}")


def price_of(entry: CatalogEntry, label: str = "RunComfy catalog") -> Price | str:
    """The entry's price per image, or why it cannot give one (no price, another unit)."""
    if entry.base_price_usd is None:
        return f"the {label} gives no usable base_price_usd for {entry.model_id}"
    unit = (entry.price_unit or "").lower()
    if unit != PRICE_UNIT:
        return (
            f"the {label} prices {entry.model_id} per {entry.price_unit!r}, not per image: seqnb cannot "
            "estimate from it"
        )
    return Price(entry.base_price_usd, "USD", f"{label}, {fetched_text(entry.fetched_at)}")


# --- schema drift (pure) ----------------------------------------------------------------------------

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


def spec_from_schema(spec: ModelSpec, schema: Any) -> ModelSpec:
    """The built-in spec redrawn from a live input schema (roles kept by wire name); ``ValueError`` if it cannot be."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        raise ValueError("the live schema is not a JSON schema object with properties")
    required_list = schema.get("required", [])
    required = {str(r) for r in required_list} if isinstance(required_list, list) else set()
    fields: list[FieldSpec] = []
    for wire, prop in schema["properties"].items():
        if not isinstance(prop, Mapping):
            raise ValueError(f"field {wire!r} is not an object")
        kind = prop.get("type")
        if kind not in ("string", "integer"):
            raise ValueError(f"field {wire!r} has type {kind!r}; seqnb validates strings and integers only")
        ours = spec.field(str(wire))
        enum = prop.get("enum")
        max_length = prop.get("maxLength")
        origin: Literal["schema", "page"] = "schema"
        if max_length is None and ours is not None and ours.max_length_origin == "page":
            max_length, origin = ours.max_length, "page"
        fields.append(
            FieldSpec(
                wire=str(wire),
                kind=kind,
                title=str(prop.get("title") or wire),
                role=ours.role if ours is not None else None,
                enum=tuple(enum) if isinstance(enum, list) else None,
                default=prop.get("default"),
                required=str(wire) in required,
                max_length=max_length if isinstance(max_length, int) else None,
                max_length_origin=origin,
                description=str(prop.get("description") or ""),
            )
        )
    return ModelSpec(
        id=spec.id,
        title=spec.title,
        aliases=spec.aliases,
        fields=tuple(fields),
        price_per_image=spec.price_per_image,
        currency=spec.currency,
        price_source=spec.price_source,
        notes=spec.notes,
    )


# --- requests that carry their price -----------------------------------------------------------------


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

    def cost(self, prices: Mapping[str, Any] | None = None) -> Cost:
        if prices and any(get_model(key).id == self.model.id for key in prices):
            return super().cost(prices)
        return super().cost({self.model.id: self.price})

    def replace(self, **changes: Any) -> PricedRequest:
        return PricedRequest.of(super().replace(**changes), self.price)


# --- the disk cache --------------------------------------------------------------------------------


def catalog_cache_path() -> Path:
    """``$SEQNB_CATALOG_CACHE``, else ``catalog.json`` in ``$SEQNB_CACHE``, else ``~/.cache/seqnb/catalog.json``."""
    if os.environ.get("SEQNB_CATALOG_CACHE"):
        return Path(os.environ["SEQNB_CATALOG_CACHE"]).expanduser()
    if os.environ.get("SEQNB_CACHE"):
        return Path(os.environ["SEQNB_CACHE"]).expanduser() / "catalog.json"
    return Path.home() / ".cache" / "seqnb" / "catalog.json"


class CatalogCache:
    """Catalog entries on disk, one JSON file, keyed by API base and model id; only fresh ones are kept."""

    VERSION = 1

    def __init__(self, path: str | os.PathLike[str] | None = None, ttl: float = TTL) -> None:
        self.path = Path(path) if path is not None else catalog_cache_path()
        self.ttl = ttl
        self._lock = threading.Lock()

    @staticmethod
    def key(api_base: str, model_id: str) -> str:
        return f"{api_base.rstrip('/')} {model_id}"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if (
            not isinstance(data, dict)
            or data.get("version") != self.VERSION
            or not isinstance(data.get("entries"), dict)
        ):
            return {}
        return dict(data["entries"])

    def get(self, api_base: str, model_id: str, now: float | None = None) -> CatalogEntry | None:
        """The fresh entry for this model from this API, or None."""
        record = self._read().get(self.key(api_base, model_id))
        if not isinstance(record, dict):
            return None
        try:
            fetched_at = float(record["fetched_at"])
            entry = CatalogEntry.from_json(record["entry"], api_base=api_base, fetched_at=fetched_at)
        except (KeyError, TypeError, ValueError):
            return None
        return entry if entry.fresh(time.time() if now is None else now, self.ttl) else None

    def put(self, entries: Iterable[CatalogEntry]) -> None:
        """Add entries (dropping the stale ones); a cache that cannot be written is skipped, with a warning."""
        now = time.time()
        with self._lock:
            kept = {
                k: v
                for k, v in self._read().items()
                if isinstance(v, dict)
                and isinstance(v.get("fetched_at"), int | float)
                and now - v["fetched_at"] < self.ttl
            }
            for entry in entries:
                kept[self.key(entry.api_base, entry.model_id)] = {
                    "fetched_at": entry.fetched_at,
                    "entry": dict(entry.raw),
                }
            data = json.dumps({"version": self.VERSION, "entries": kept}, sort_keys=True).encode()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-catalog-")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    os.replace(tmp, self.path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
            except OSError as exc:
                warnings.warn(
                    f"the catalog cache {self.path} cannot be written ({exc.strerror or exc}); prices are read "
                    "again next session. Set SEQNB_CATALOG_CACHE to a writable file",
                    CatalogWarning,
                    stacklevel=3,
                )


# --- the I/O shell ---------------------------------------------------------------------------------


def run_detached(make: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run a coroutine on its own loop in a short-lived thread, waiting at most ``timeout`` seconds.

    A bounded blocking call that works from any context: a script, or a running loop such as
    Jupyter's (which it holds up for at most ``timeout``), without nest-asyncio.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="seqnb-detached", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise errors.Timeout(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


async def fetch_entry(api_base: str, secret: Secret, model_id: str, deadline: float = DEADLINE) -> CatalogEntry:
    """One model's entry, in one call within ``deadline`` seconds (no retries: a slow catalog is skipped)."""
    path = f"/models/{quote(model_id, safe='/')}?include_schema=true"
    body = await get_once(api_base, secret, path, deadline, what="the catalog")
    try:
        return CatalogEntry.from_json(body, api_base=api_base, fetched_at=time.time())
    except ValueError as exc:
        raise errors.ServerError(f"the catalog answered an unreadable entry for {model_id}: {exc}") from None


async def fetch_entries(
    api_base: str, secret: Secret, model_ids: Iterable[str], deadline: float = DEADLINE
) -> dict[str, CatalogEntry | errors.SeqnbError]:
    """Every model's entry, fetched at once; a failure is kept in its place."""
    ids = list(model_ids)
    results = await asyncio.gather(*(fetch_entry(api_base, secret, m, deadline) for m in ids), return_exceptions=True)
    out: dict[str, CatalogEntry | errors.SeqnbError] = {}
    for model_id, result in zip(ids, results, strict=True):
        if isinstance(result, CatalogEntry | errors.SeqnbError):
            out[model_id] = result
        elif isinstance(result, Exception):
            out[model_id] = errors.TransportError(f"{type(result).__name__}: {result}")
        else:  # pragma: no cover - cancellation and the like
            raise result
    return out


def why_unavailable(exc: errors.SeqnbError) -> str:
    """Why a catalog read failed, in a few words for a price's source."""
    if isinstance(exc, errors.AuthError):
        return "the catalog refused the token"
    if isinstance(exc, errors.ModelNotFound | errors.NotFound):
        return "the catalog has no entry for this model"
    text = str(exc).split(" - ")[0]
    return f"catalog unavailable: {text}"


class Catalog:
    """One client's view of the catalog: entries in memory, on disk for a day, fetched within a short deadline."""

    def __init__(
        self,
        api_base: str,
        secret: Secret,
        *,
        label: str = "RunComfy catalog",
        cache: CatalogCache | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.label = label
        self.cache = cache if cache is not None else CatalogCache()
        self.deadline = deadline
        self.entries: dict[str, CatalogEntry] = {}
        self.problems: dict[str, str] = {}
        """Why a model's entry could not be read (shown in its price's source)."""
        self.drift: dict[str, list[SchemaDrift]] = {}
        self._secret = secret
        self._failed_at: dict[str, float] = {}

    def _wanted(self, model_ids: Iterable[str], refresh: bool) -> list[str]:
        """The models whose entry is not in memory (or all, on refresh), after trying the disk."""
        now = time.time()
        wanted: list[str] = []
        for model_id in model_ids:
            known = self.entries.get(model_id)
            if not refresh and known is not None and known.fresh(now, self.cache.ttl):
                continue
            if not refresh and now - self._failed_at.get(model_id, -math.inf) < RETRY_FAILED:
                continue
            cached = None if refresh else self.cache.get(self.api_base, model_id, now)
            if cached is not None:
                self._absorb({model_id: cached}, store=False)
                continue
            wanted.append(model_id)
        return wanted

    def _absorb(self, results: Mapping[str, CatalogEntry | errors.SeqnbError], store: bool = True) -> None:
        """Take fetched results in: entries to memory (and disk), failures remembered; warn of drift and units."""
        fresh: list[CatalogEntry] = []
        for model_id, result in results.items():
            if isinstance(result, errors.SeqnbError):
                self.problems[model_id] = why_unavailable(result)
                self._failed_at[model_id] = time.time()
                continue
            first = model_id not in self.drift
            self.entries[model_id] = result
            self.problems.pop(model_id, None)
            self._failed_at.pop(model_id, None)
            fresh.append(result)
            drift = schema_drift(get_model(model_id), result.input_schema) if result.input_schema is not None else []
            self.drift[model_id] = drift
            if first:
                for difference in drift:
                    warnings.warn(str(difference), SchemaDriftWarning, stacklevel=4)
                price = price_of(result, self.label)
                if isinstance(price, str):
                    warnings.warn(f"{price}; estimates use the built-in list price", CatalogWarning, stacklevel=4)
        if store and fresh:
            self.cache.put(fresh)

    def load(self, model_ids: Iterable[str], refresh: bool = False) -> None:
        """Make the entries known (memory, disk, then network within the deadline); blocks at most the deadline."""
        wanted = self._wanted(model_ids, refresh)
        if not wanted:
            return
        try:
            results = run_detached(
                lambda: fetch_entries(self.api_base, self._secret, wanted, self.deadline), self.deadline + 1.0
            )
        except errors.SeqnbError as exc:
            results = dict.fromkeys(wanted, exc)
        self._absorb(results)

    async def aload(self, model_ids: Iterable[str], refresh: bool = False) -> None:
        """``load`` for async code: the same, awaited on the caller's loop."""
        wanted = self._wanted(model_ids, refresh)
        if wanted:
            self._absorb(await fetch_entries(self.api_base, self._secret, wanted, self.deadline))

    def price(self, model: str | ModelSpec) -> Price:
        """The catalog's price per image for a model, or the built-in one saying why not (no I/O)."""
        spec = get_model(model)
        entry = self.entries.get(spec.id)
        if entry is None:
            return builtin_price(spec, self.problems.get(spec.id, "catalog not read yet"))
        price = price_of(entry, self.label)
        return builtin_price(spec, price) if isinstance(price, str) else price

    def live_spec(self, model: str | ModelSpec) -> ModelSpec | None:
        """The spec redrawn from the live schema, or None when there is none or it cannot be used."""
        spec = get_model(model)
        entry = self.entries.get(spec.id)
        if entry is None or entry.input_schema is None:
            return None
        try:
            return spec_from_schema(spec, entry.input_schema)
        except ValueError as exc:
            warnings.warn(
                f"{spec.id}: the live schema cannot be used for validation ({exc}); the built-in spec is used",
                CatalogWarning,
                stacklevel=3,
            )
            return None

    def __repr__(self) -> str:
        return f"<seqnb.Catalog {self.label} at {self.api_base}: {len(self.entries)} entries>"
