"""RunComfy's model catalog for one client: entries fetched within a short deadline, kept for a day.

seqnb uses the catalog for two things:

- **prices** (``seqnb.api.catalog.entry``): ``base_price_usd`` per ``price_unit`` becomes the
  ``Price`` of every estimate. A catalog that cannot be read within ``DEADLINE`` seconds never
  blocks anything: the built-in list price is used, its source saying why.
- **schema drift** (``seqnb.api.catalog.drift``): the live input schema is compared with the
  model's built-in one (its file's); every difference is one ``SchemaDriftWarning``.

Entries are cached on disk for a day (``seqnb.api.catalog.cache``). The pure parts (entries, prices,
drift) do no I/O; this module is the thin shell: ``fetch_entry`` / ``fetch_entries`` (one call
each, no retries) and ``Catalog``.
The names those modules define are offered here too.
"""

from __future__ import annotations

import asyncio
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from ... import errors
from ..._loop import run_detached
from ...model.pricing import Price
from ...model.spec import ModelSpec, get_model, spec_from_schema
from ..auth import Secret
from ..transport import get_once
from .cache import CatalogCache
from .drift import SchemaDrift, SchemaDriftWarning, schema_drift
from .entry import CatalogEntry, CatalogWarning, builtin_price, price_of

__all__ = ["DEADLINE", "Catalog", "why_unavailable"]

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
