"""RunComfy's model catalog for one client: its prices and live schemas, fetched within a short deadline, kept for a day.

A catalog that cannot be read within ``DEADLINE`` seconds never blocks anything: the built-in list price is used,
its source saying why. Entries are kept on disk for a day (``CatalogCache``), so a new session prices without
asking the catalog again. The pure parts (entries, prices, drift) do no I/O; this module is the thin shell.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ... import errors
from ..._files import write_atomically
from ..._loop import run_detached
from ...errors import SettingInvalid
from ...model.pricing import Price
from ...model.spec import ModelSpec, get_model, spec_from_schema, with_live_reference_limits
from ..auth import Secret
from ..transport import get_once
from .drift import SchemaDrift, SchemaDriftWarning, schema_drift
from .entry import TTL, CatalogEntry, CatalogWarning, builtin_price, fetched_text, price_of

__all__ = ["DEADLINE", "Catalog", "CatalogCache", "catalog_cache_path", "limits_in_use", "why_unavailable"]

DEADLINE = 3.0
"""Seconds a catalog read may take in all before seqnb falls back to the built-in price."""
RETRY_FAILED = 900.0
"""Seconds before a client tries again to read a catalog that failed (unless asked to refresh)."""


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
    if isinstance(exc, errors.NotFound):
        return "the catalog has no entry for this model"
    text = str(exc).split(" - ")[0]
    return f"catalog unavailable: {text}"


def limits_in_use(spec: ModelSpec, entry: CatalogEntry | None, label: str, why: str) -> tuple[ModelSpec, str]:
    """The spec with the reference rules in use and whose they are: ``label``'s when ``entry``'s live schema gives
    some (``maxItems``, ``validations``), else the built-in ones, ``why`` saying why not."""
    live = with_live_reference_limits(spec, entry.input_schema) if entry is not None else None
    if entry is None or live is None:
        return spec, f"built in (UNCONFIRMED): {why}"
    return live, f"{label}, {fetched_text(entry.fetched_at)}"


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
        if self.path.is_dir():
            raise SettingInvalid(
                f"catalog cache {str(self.path)!r} is a folder: set SEQNB_CATALOG_CACHE to a file, "
                "e.g. ~/.cache/seqnb/catalog.json"
            )
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
        entries = data.get("entries") if isinstance(data, dict) and data.get("version") == self.VERSION else None
        return dict(entries) if isinstance(entries, dict) else {}

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
                write_atomically(self.path, data, prefix=".tmp-catalog-")
            except OSError as exc:
                warnings.warn(
                    f"the catalog cache {self.path} cannot be written ({exc.strerror or exc}); prices are read "
                    "again next session. Set SEQNB_CATALOG_CACHE to a writable file",
                    CatalogWarning,
                    stacklevel=3,
                )


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
        self._limits: dict[str, tuple[CatalogEntry, ModelSpec | None]] = {}

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
                    if not difference.followed:  # a live reference rule is the one checked: nothing to warn of
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

    def reference_limits(self, model: str | ModelSpec) -> ModelSpec:
        """The spec with the reference rules of the live schema (``maxItems``, ``validations``) when the entry read
        gives them, else the spec as built in (no I/O)."""
        spec = get_model(model)
        entry = self.entries.get(spec.id)
        if entry is None or spec.references_field is None:
            return spec
        known = self._limits.get(spec.id)
        if known is None or known[0] is not entry:
            known = (entry, with_live_reference_limits(spec, entry.input_schema))
            self._limits[spec.id] = known
        return known[1] or spec

    def limits_source(self, model: str | ModelSpec) -> str:
        """Where a model's reference rules come from: this catalog (live) or seqnb's built-in values, and why."""
        spec = get_model(model)
        entry = self.entries.get(spec.id)
        why = self.problems.get(spec.id) or ("no reference rules in its schema" if entry else "catalog not read yet")
        return limits_in_use(spec, entry, self.label, why)[1]

    def __repr__(self) -> str:
        return f"<seqnb.Catalog {self.label} at {self.api_base}: {len(self.entries)} entries>"
