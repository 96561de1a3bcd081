"""A client's reference images: local files uploaded before a run is prepared, every URL checked before a submit.

The client's ``submit``/``sweep`` call ``resolve`` (local paths become URLs: the user's
``uploader``, else the emulator's file route) and its ``send``/``send_all`` call ``check`` before
anything may leave: a reference that cannot be fetched fails every run using it as "not sent",
with a ``RequestInvalid`` naming the URL and the fix. URLs that passed are not fetched again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .. import errors
from ..api.auth import Secret
from ..api.backend import Backend
from ..images.cache import ImageCache
from ..images.hosts import host_entry
from ..images.references import Uploader, check_references, is_local, upload_local
from ..images.store import CachedImage
from ..model.request import Request
from ..model.validation import Report
from ..runs.run import RunCore

__all__ = ["ReferenceGate"]

R = TypeVar("R", bound=RunCore)


class ReferenceGate:
    """One client's reference checks: ``uploader`` for local files, ``deadline`` seconds per reference.

    ``backend``: the client's service (its host serves the emulator's uploads); ``gallery_cache``: the
    cache of the client's gallery, when it has one (references are kept there, for its grids).
    """

    def __init__(
        self,
        backend: Backend,
        gallery_cache: Callable[[], ImageCache | None],
        uploader: Uploader | None = None,
        deadline: float = 30.0,
        token: Secret | None = None,
    ) -> None:
        self.backend = backend
        self._gallery_cache = gallery_cache
        self.uploader = uploader
        self._token = token  # the emulator's upload route takes the client's token
        self.deadline = deadline
        self.images: dict[str, CachedImage] = {}
        """Every reference checked so far, by URL, as cached."""
        self._cache: ImageCache | None = None

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

    async def _uploaded(self, model: str, refs: Sequence[str]) -> list[str]:
        if not any(is_local(r) for r in refs):
            return list(refs)
        emulated = self.backend.kind == "emulator"
        root = self.backend.base_url.rstrip("/").removesuffix("/v1") if emulated else None
        urls, problems = await upload_local(refs, self.uploader, root, self.deadline, self._token)
        if problems:
            raise errors.RequestInvalid(Report(model, tuple(problems)))
        return urls

    async def resolve(self, request: Request) -> Request:
        """The request with each local reference uploaded; ``RequestInvalid`` when one cannot be."""
        refs = request.references
        if not any(is_local(r) for r in refs):
            return request
        return request.replace(references=await self._uploaded(request.model.id, refs))

    async def resolve_axis(self, axis: Sequence[Sequence[str]]) -> list[list[str]]:
        """A sweep's ``references=[[...], [...]]`` axis with every local file uploaded (once each)."""
        flat = list(dict.fromkeys(r for refs in axis for r in ([refs] if isinstance(refs, str) else refs)))
        mapped = dict(zip(flat, await self._uploaded("sweep", flat), strict=True))
        return [[mapped[r] for r in ([refs] if isinstance(refs, str) else refs)] for refs in axis]

    async def resolve_sweep(self, options: dict[str, Any]) -> dict[str, Any]:
        """A sweep's keyword arguments with the local files of its ``references`` axis uploaded."""
        if options.get("references") is None:
            return options
        return {**options, "references": await self.resolve_axis(options["references"])}

    async def check(self, runs: Iterable[R]) -> list[R]:
        """Fetch every reference of ``runs`` not checked yet (returns them, as a list); on a problem, fail them and raise.

        All the runs still to send fail (not sent) when one reference fails: a sweep goes whole or not at all.
        """
        batch = list(runs)
        pending = [r for r in batch if r.status == "created"]
        targets = [r for r in pending if r.request.references]
        wanted = [u for r in targets for u in r.request.references if u not in self.images]
        if not wanted:
            return batch
        allow = [host_entry(self.backend.base_url)]
        found, problems = await check_references(wanted, self.cache, allow=allow, deadline=self.deadline)
        self.images.update(found)
        if not problems:
            return batch
        said = "; ".join(p.message for p in problems.values())
        for run in pending:
            run.transition("failed", detail="not sent", error=f"not sent: a reference failed its check: {said}")
        raise errors.RequestInvalid(Report(targets[0].request.model.id, tuple(problems.values())))
