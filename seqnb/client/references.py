"""A client's reference images: local ones made inline PNGs (or hosted by the user's uploader) before a run is prepared,
every reference checked before a submit, inline ones put back in the body as it leaves.

A local file, a PIL image, bytes or an image data URI becomes an inline PNG, as RunComfy's own tools send
references: its bytes go to the image cache, the request holds its stand-in (``seqnb.model.references``),
and only the body sent carries the data URI. With an ``uploader``, such a reference is hosted instead.
A reference that fails its check fails every run using it as "not sent", with a ``RequestInvalid``
naming it and the fix; references that passed are not checked again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .. import errors
from ..api.backend import Backend
from ..images.cache import ImageCache
from ..images.hosts import host_entry
from ..images.references import Inline, Uploader, check_references, inline, local_path, problem, shown
from ..images.store import CachedImage
from ..model.references import (
    INLINE_PREFIX,
    MAX_INLINE_BYTES,
    MAX_INLINE_PIXELS,
    MAX_REQUEST_BYTES,
    StandIn,
    inline_length,
    reference_name,
)
from ..model.request import Request
from ..model.spec import ModelSpec
from ..model.sweep import reference_sets
from ..model.validation import Problem, Report, dimension_problems
from ..runs.run import RunCore

__all__ = ["ReferenceGate"]

R = TypeVar("R", bound=RunCore)

_KEPT = 8
"""Inline references kept as data URIs in memory, the most recently sent (the others are read again from the cache)."""


def _is_url(reference: Any) -> bool:
    return isinstance(reference, str) and "://" in reference and not reference.startswith("file://")


class ReferenceGate:
    """One client's references: ``uploader`` to host local ones instead of sending them inline, ``deadline`` seconds per
    reference check (and per upload).

    ``backend``: the client's service (its host may serve references over http); ``gallery_cache``: the cache of the
    client's gallery, when it has one (references are kept there, for its grids); ``spec_in_use``: the spec whose
    reference rules apply to a model (the live catalog's limits when the client has them).
    """

    def __init__(
        self,
        backend: Backend,
        gallery_cache: Callable[[], ImageCache | None],
        uploader: Uploader | None = None,
        deadline: float = 30.0,
        spec_in_use: Callable[[ModelSpec], ModelSpec] = lambda spec: spec,
    ) -> None:
        self.backend = backend
        self._gallery_cache = gallery_cache
        self.uploader = uploader
        self.deadline = deadline
        self._spec_in_use = spec_in_use
        self.images: dict[str, CachedImage] = {}
        """Every reference checked so far, by URL or stand-in, as cached."""
        self._cache: ImageCache | None = None
        self._inline: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def cache(self) -> ImageCache:
        """Where references are kept: the gallery's cache when one is attached, else the default cache."""
        cache = self._gallery_cache()
        if cache is not None:
            return cache
        if self._cache is None:
            self._cache = ImageCache()
        return self._cache

    def http_hosts(self) -> list[str]:
        """Hosts references may use over plain http: the client's own (the emulator) and the allowed ones."""
        return [host_entry(self.backend.base_url), *self.cache.policy.allowed]

    # --- local references become inline (or hosted) ------------------------------------------

    def _kept(self, made: Inline) -> CachedImage | Problem:
        """An inline image kept in the cache under its hash (and as a data URI in memory, for the submit)."""
        key = str(made.stand_in)
        try:
            cached = self.cache.store(key, made.png)
        except errors.ImageRefused as exc:
            return problem(key, str(exc).partition(": ")[2] or str(exc), exc.reason)
        self._remember(key, made.data_uri)
        return cached

    def _remember(self, key: str, data_uri: str) -> None:
        with self._lock:  # images are made inline in worker threads, several at once
            self._inline[key] = data_uri
            self._inline.move_to_end(key)
            while len(self._inline) > _KEPT:
                self._inline.popitem(last=False)

    def _stand_in_image(self, reference: str, stand_in: StandIn) -> CachedImage | Problem:
        """The cached PNG of a stand-in given back (a rerun, a promote, a row's payload), within the caps."""
        found = self.cache.find(reference, stand_in.sha256)
        if found is None:
            return problem(reference, f"is an inline image no longer in the image cache {self.cache.directory}", "gone")
        if found.format != "png" or found.bytes > MAX_INLINE_BYTES or found.width * found.height > MAX_INLINE_PIXELS:
            return problem(reference, "names a cached image that is no inline PNG within the caps", "gone")
        return found

    def _local(self, reference: Any, *, upload: bool = True) -> str | Problem:
        """One reference as a request carries it: a URL as given, else the stand-in of its inline PNG (or, with an
        uploader and ``upload``, the URL it answers). CPU and disk only, but the uploader: run it in a worker thread."""
        if _is_url(reference):
            return str(reference)
        uploader = self.uploader if upload else None
        stand_in = StandIn.parse(reference)
        if stand_in is not None:
            found = self._stand_in_image(reference, stand_in)
            if isinstance(found, Problem) or uploader is None:
                return found if isinstance(found, Problem) else str(reference)
            return self._uploaded(reference, uploader(found.path))
        path = local_path(reference)
        if path is not None and uploader is not None:  # hosted as the user chose, the file as it is
            if not path.is_file():
                return problem(shown(reference), "is no file here")
            return self._uploaded(shown(reference), uploader(path))
        made = inline(reference)
        if isinstance(made, Problem):
            return made
        cached = self._kept(made)
        if isinstance(cached, Problem) or uploader is None:
            return cached if isinstance(cached, Problem) else str(made.stand_in)
        return self._uploaded(shown(reference), uploader(cached.path))

    @staticmethod
    def _uploaded(name: str, url: Any) -> str | Problem:
        if not isinstance(url, str) or "://" not in url:
            return problem(name, f"was uploaded, but the uploader returned {url!r}, not a URL", "upload")
        return url

    async def _resolved(self, references: Sequence[Any]) -> list[str | Problem]:
        """Each reference as a request carries it, or its problem; local ones worked on in a worker thread each."""

        async def one(reference: Any) -> str | Problem:
            if _is_url(reference):
                return str(reference)
            try:
                return await asyncio.wait_for(asyncio.to_thread(self._local, reference), self.deadline)
            except TimeoutError:
                return problem(shown(reference), f"was not ready within the {self.deadline:g} s allowed", "upload")
            except Exception as exc:  # the user's uploader may fail in any way
                return problem(shown(reference), f"could not be uploaded ({type(exc).__name__}: {exc})", "upload")

        return list(await asyncio.gather(*(one(r) for r in references)))

    def _inline_bytes(self, stand_ins: Iterable[str]) -> int:
        """What the data URIs of these inline images add to a body (a stand-in not in the cache adds nothing: its
        check says it is gone)."""
        total = 0
        for reference in stand_ins:
            stand_in = StandIn.parse(reference)
            assert stand_in is not None
            image = self.images.get(reference) or self.cache.find(reference, stand_in.sha256)
            total += inline_length(image.bytes if image is not None else 0)
        return total

    def _too_large(self, request: Request) -> Problem | None:
        """Whether the body sent for ``request``, its inline images included, is over RunComfy's 64 MiB (disk reads for
        a stand-in not seen yet: run it in a worker thread)."""
        stand_ins = [r for r in request.references if StandIn.parse(r) is not None]
        if not stand_ins:
            return None
        rest = len(json.dumps(request.payload(), ensure_ascii=False, separators=(",", ":")).encode())
        return self._over_cap(stand_ins, rest - sum(map(len, stand_ins)))

    def _over_cap(self, stand_ins: Sequence[str], rest: int, where: str = "") -> Problem | None:
        """The problem when ``stand_ins`` sent inline with ``rest`` bytes of body besides make it over 64 MiB (``where``:
        which images, for a sweep's set)."""
        total = rest + self._inline_bytes(stand_ins)
        if total <= MAX_REQUEST_BYTES:
            return None
        return Problem(
            "references",
            f"{where}{'its' if where else 'the'} {len(stand_ins)} images sent inline make "
            f"{'a' if where else 'the'} request {total / 2**20:.1f} MiB, over the {MAX_REQUEST_BYTES // 2**20} MiB "
            "RunComfy takes in one request: give fewer or smaller images, or host them and pass their https URLs "
            "(or give the client an uploader=)",
            code="too_large",
            wire="images",
        )

    async def resolve(self, request: Request, *, recorded: bool = False) -> Request:
        """The request with each local reference made inline (its stand-in) or hosted by the uploader; ``RequestInvalid``
        naming each one that cannot be, or when they make the request too large.

        ``recorded``: the references come from a record (a rerun of a ledger row, maybe another person's), which names
        them by URL or stand-in only: a path there is refused, never read and sent."""
        refs = request.references
        if all(_is_url(r) for r in refs):
            return request
        if recorded:
            odd = [r for r in refs if not _is_url(r) and StandIn.parse(r) is None]
            if odd:
                said = "is not a URL or an inline image seqnb recorded: give the image again (references=...)"
                raise errors.RequestInvalid(Report(request.model.id, tuple(problem(shown(r), said) for r in odd)))
        resolved = await self._resolved(refs)
        problems = [r for r in resolved if isinstance(r, Problem)]
        if not problems:
            request = request.replace(references=resolved)
            too_large = await asyncio.to_thread(self._too_large, request)
            problems = [too_large] if too_large is not None else []
        if problems:
            raise errors.RequestInvalid(Report(request.model.id, tuple(problems)))
        return request

    async def resolve_sweep(self, options: dict[str, Any]) -> dict[str, Any]:
        """A sweep's keyword arguments with the local references of its ``references`` axis made inline or hosted
        (each once, however many sets it is in)."""
        axis = _axis(options)
        if axis is None:
            return options
        resolved = await self._resolved(axis[1])
        return await asyncio.to_thread(self._with_axis, options, *axis, resolved)

    def plan_sweep(self, options: dict[str, Any]) -> dict[str, Any]:
        """``resolve_sweep`` for a plan: local references made inline (their stand-ins, as a sweep without an
        uploader records them), never uploaded; the same checks, so a plan refuses what its sweep would."""
        axis = _axis(options)
        if axis is None:
            return options
        return self._with_axis(options, *axis, [self._local(r, upload=False) for r in axis[1]])

    def _with_axis(
        self, options: dict[str, Any], sets: list[list[Any]], unique: list[Any], outcomes: Sequence[str | Problem]
    ) -> dict[str, Any]:
        """``options`` with each set's references as resolved, each set alone within the cap; else RequestInvalid."""
        resolved = dict(zip(map(_key, unique), outcomes, strict=True))
        problems = list(dict.fromkeys(r for r in resolved.values() if isinstance(r, Problem)))
        chosen = [[str(resolved[_key(r)]) for r in refs] for refs in sets]
        if (
            not problems
        ):  # each set's images alone within the cap (the transport refuses a body over it with its prompt)
            for index, refs in enumerate(chosen, 1):
                stand_ins = [r for r in refs if StandIn.parse(r) is not None]
                if stand_ins:
                    found = self._over_cap(stand_ins, 0, f"set {index} of the references axis: ")
                    problems += [found] if found is not None else []
        if problems:
            raise errors.RequestInvalid(Report("sweep", tuple(problems)))
        return {**options, "references": chosen}

    # --- before a submit ---------------------------------------------------------------------

    async def check(self, runs: Iterable[R]) -> list[R]:
        """Fetch every reference of ``runs`` not checked yet (a URL from its host, an inline one from the cache) and
        hold each to its model's rules (``validations``); returns the runs, as a list. On a problem, fail them and raise.

        All the runs still to send fail (not sent) when one reference fails: a sweep goes whole or not at all.
        """
        batch = list(runs)
        pending = [r for r in batch if r.status == "created"]
        targets = [r for r in pending if r.request.references]
        if not targets:
            return batch
        wanted = [u for r in targets for u in r.request.references if u not in self.images]
        problems: dict[str, Problem] = {}
        if wanted:
            allow = [host_entry(self.backend.base_url)]
            found, problems = await check_references(wanted, self.cache, allow=allow, deadline=self.deadline)
            self.images.update(found)
        for run in targets:
            field = self._spec_in_use(run.request.model).references_field
            for url in run.request.references:
                image = self.images.get(url)
                if field is not None and image is not None:
                    name = url if StandIn.parse(url) is None else reference_name(url)
                    for p in dimension_problems(field, name, image.width, image.height):
                        problems.setdefault(f"{url} {p.message}", p)
        if not problems:
            return batch
        said = "; ".join(p.message for p in problems.values())
        for run in pending:
            run.transition("failed", detail="not sent", error=f"not sent: a reference failed its check: {said}")
        raise errors.RequestInvalid(Report(targets[0].request.model.id, tuple(problems.values())))

    async def wire_payload(self, request: Request) -> dict[str, Any]:
        """The body sent for ``request``: its payload with each inline image's stand-in replaced by its data URI (kept
        from a moment ago, else read again from the cache); ``RequestInvalid`` when the image is gone."""
        payload = request.payload()
        field = request.model.references_field
        refs = payload.get(field.wire) if field is not None else None
        if not isinstance(refs, list) or not any(StandIn.parse(r) for r in refs):
            return payload
        sent: list[Any] = []
        for ref in refs:
            stand_in = StandIn.parse(ref)
            if stand_in is None:
                sent.append(ref)
                continue
            with self._lock:
                uri = self._inline.get(ref)
            if uri is None:
                found = await asyncio.to_thread(self._stand_in_image, ref, stand_in)
                if isinstance(found, Problem):
                    raise errors.RequestInvalid(Report(request.model.id, (found,)))
                data = await asyncio.to_thread(found.path.read_bytes)
                uri = INLINE_PREFIX + base64.b64encode(data).decode("ascii")
            self._remember(ref, uri)
            sent.append(uri)
        return {**payload, field.wire: sent}  # type: ignore[union-attr]


def _axis(options: dict[str, Any]) -> tuple[list[list[Any]], list[Any]] | None:
    """The sets of a sweep's references axis, and every reference in them once; None when it has no such axis."""
    axis = options.get("references")
    if axis is None:
        return None
    sets = [list(refs) for refs in reference_sets(axis) if refs is not None]
    return sets, list({_key(r): r for refs in sets for r in refs}.values())


def _key(reference: Any) -> Any:
    """A reference as a dict key: its value when it has one (a string, bytes), else the object itself (a PIL image)."""
    if isinstance(reference, str | bytes):
        return reference
    return ("object", id(reference))
