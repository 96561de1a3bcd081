"""A run as users hold it: ``AsyncRun`` (the run's state itself, bound to the client that owns it, with its async
calls) and ``Run``, its synchronous mirror: the same state through typed attributes, blocking where it awaits."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast, overload

from .. import errors
from ..api.protocol import RunStatus
from ..ledger.marks import RunMarks
from ..model.request import Request
from ..runs.run import NoteSource, RunCore, RunEvent

if TYPE_CHECKING:
    from ..ledger.facade import Ledger
    from .core import AsyncClient
    from .sync import Client

__all__ = ["AsyncRun", "Run", "Same", "core_of", "mirrored"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class AsyncRun(RunCore):
    """A run bound to its ``AsyncClient``: its state, and the calls that wait for, cancel and judge it."""

    _client: AsyncClient | None = None
    _changed: asyncio.Event | None = None
    _submit_error: BaseException | None = None
    """Why its submit failed, for ``accepted()`` to raise (None: accepted, or not answered yet)."""

    @classmethod
    def of(cls, core: RunCore, client: AsyncClient) -> AsyncRun:
        """The ``AsyncRun`` of a run rebuilt elsewhere (a ledger row), owned by ``client``."""
        if isinstance(core, AsyncRun):
            core._client = client
            return core
        state = {f.name: getattr(core, f.name) for f in dataclasses.fields(RunCore) if f.init}
        run = cls(**{**state, "_subscribers": []})
        run._client = client
        return run

    @property
    def bound(self) -> bool:
        """Whether the run belongs to a client (a run rebuilt from a ledger belongs to none until adopted)."""
        return self._client is not None

    @property
    def client(self) -> AsyncClient:
        """The client that owns this run."""
        if self._client is None:
            raise errors.SeqnbError(f"run {self.id} belongs to no client; adopt it with client.resume() or attach()")
        return self._client

    def emit(self, event: RunEvent) -> None:
        super().emit(event)
        if self._changed is not None:
            self._changed.set()
            if self.done:
                self._changed = None  # its waiters hold it; an ended run keeps none

    async def wait(self, timeout: float | None = None) -> AsyncRun:
        """Until the run ends (completed, failed, cancelled, unknown, lost). A timeout stops waiting, not the run."""
        if not self.done and not self.watching and self.request_id:
            self.client.watch(self)
        await self._until(
            lambda: self.done, timeout, "still {status} after {timeout} s (it keeps running; wait again or cancel)"
        )
        return self

    async def accepted(self, timeout: float | None = None) -> AsyncRun:
        """Until the service has answered this run's submit; returns the run, or raises why it was not accepted.

        ``submit`` and ``sweep`` return once a run is recorded and send it in the background; this is
        where a refusal (``Refused``, ``AuthError``, ``RequestInvalid`` for a bad reference...) surfaces.
        """
        await self._until(
            lambda: self.status not in ("created", "submitting"),
            timeout,
            "no answer to its submit within {timeout} s (still {status})",
        )
        if self._submit_error is not None:
            raise self._submit_error
        return self

    async def _until(self, settled: Callable[[], bool], timeout: float | None, late: str) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not settled():
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise errors.WaitTimeout(f"run {self.id}: " + late.format(status=self.status, timeout=timeout))
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def cancel(self) -> str:
        """Cancel if the service still can; returns the outcome: ``cancelled`` or ``not_cancellable``."""
        return await self.client.cancel(self)

    async def refresh(self) -> AsyncRun:
        """Ask the service for the current state now."""
        await self.client.refresh(self)
        return self

    # --- marks: written to the client's ledger at once ------------------------------------

    def _ledger(self) -> Ledger:
        ledger = self.client.ledger
        if ledger is None:
            raise errors.SeqnbError(
                f"run {self.id}: its client has no ledger to keep marks in; use seqnb.connect() "
                "(it records to one), or ledger.mark(run_id, ...)"
            )
        return ledger

    def rate(self, stars: int, frame: int | None = None) -> None:
        """Rate the series (or one frame, 0-based) 1 to 5 stars; 0 clears. Written to the ledger at once."""
        self._ledger().mark(self.id, frame=frame, rating=stars)

    def pick(self) -> None:
        """Mark the run picked (a keeper; ``client.promote`` can make it again at full quality)."""
        self._ledger().mark(self.id, verdict="picked")

    def reject(self) -> None:
        """Mark the run rejected."""
        self._ledger().mark(self.id, verdict="rejected")

    def tag(self, *tags: str) -> None:
        """Add tags to the run (``ledger.runs(tag=...)`` finds them)."""
        self._ledger().mark(self.id, tags=tags)

    def untag(self, *tags: str) -> None:
        """Remove tags from the run."""
        self._ledger().mark(self.id, untag=tags)

    def comment(self, text: str) -> None:
        """Set the run's comment ('' clears it)."""
        self._ledger().mark(self.id, comment=text)

    @property
    def marks(self) -> RunMarks:
        """This run's marks as they stand, by the current user (rating, frame ratings, verdict, tags, comment)."""
        return self._ledger().marks_of([self.id])[self.id]

    def grid(self, size: int | None = None) -> Any:
        """This series as an ipywidgets grid, from its client's gallery (images come from the local cache)."""
        from ..images.grid import grid  # ipywidgets and Pillow load only when a grid is asked for

        return grid(self.client._gallery_or_new(), [self], size)


class Same(Generic[T]):
    """An attribute of a mirror (``Run``, ``Client``) that reads the same attribute of its ``aio`` (typed, read-only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, mirror: None, owner: type) -> Same[T]: ...
    @overload
    def __get__(self, mirror: object, owner: type) -> T: ...
    def __get__(self, mirror: Any, owner: type) -> Same[T] | T:
        return self if mirror is None else cast(T, getattr(mirror.aio, self.name))


def mirrored(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """A method of a mirror (``Run``, ``Client``) that calls the same method of its ``aio``: the same signature and
    docstring (``inspect.signature``, ``help`` and mypy see them), written once."""

    @functools.wraps(method)
    def call(mirror: Any, /, *args: P.args, **kw: P.kwargs) -> R:
        return method(mirror.aio, *args, **kw)

    return call


class Run:
    """The synchronous mirror of ``AsyncRun``: the same state and methods, blocking where it awaits."""

    id: Same[str] = Same()
    request: Same[Request] = Same()
    request_id: Same[str | None] = Same()
    status: Same[RunStatus] = Same()
    queue_position: Same[int | None] = Same()
    queue_text: Same[str] = Same()
    error: Same[str | None] = Same()
    model: Same[str] = Same()
    requested: Same[int] = Same()
    returned: Same[int | None] = Same()
    short: Same[bool] = Same()
    done: Same[bool] = Same()
    cancellable: Same[bool] = Same()
    cancel_outcome: Same[str | None] = Same()
    sweep_id: Same[str | None] = Same()
    parent_id: Same[str | None] = Same()
    note: Same[str] = Same()
    notes: Same[dict[NoteSource, str]] = Same()
    created_at: Same[float] = Same()
    submitted_at: Same[float | None] = Same()
    started_at: Same[float | None] = Same()
    finished_at: Same[float | None] = Same()
    server_created_at: Same[str | None] = Same()
    server_finished_at: Same[str | None] = Same()
    cost: Same[Decimal | None] = Same()
    cost_source: Same[str | None] = Same()
    expected_cost: Same[Decimal] = Same()
    cost_differs: Same[bool | None] = Same()
    service: Same[str | None] = Same()
    label: Same[str] = Same()
    marks: Same[RunMarks] = Same()

    def __init__(self, core: AsyncRun, client: Client) -> None:
        self.aio = core
        """The ``AsyncRun`` this mirrors (the same state)."""
        self.client = client

    @property
    def images(self) -> list[str]:
        """The result image URLs (a copy)."""
        return list(self.aio.images)

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends; ``WaitTimeout`` after ``timeout`` seconds (the run goes on)."""
        self.client._run(self.aio.wait(timeout))
        return self

    def accepted(self, timeout: float | None = None) -> Run:
        """Block until the service has answered the submit; raises why it was not accepted (see ``AsyncRun``)."""
        self.client._run(self.aio.accepted(timeout))
        return self

    def cancel(self) -> str:
        """Cancel while queued; returns ``cancelled`` or ``not_cancellable`` (already running)."""
        return self.client._run(self.aio.cancel())

    def refresh(self) -> Run:
        """Ask the service for the current state now."""
        self.client._run(self.aio.refresh())
        return self

    subscribe = mirrored(AsyncRun.subscribe)
    summary = mirrored(AsyncRun.summary)
    rate = mirrored(AsyncRun.rate)
    pick = mirrored(AsyncRun.pick)
    reject = mirrored(AsyncRun.reject)
    tag = mirrored(AsyncRun.tag)
    untag = mirrored(AsyncRun.untag)
    comment = mirrored(AsyncRun.comment)
    grid = mirrored(AsyncRun.grid)

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.summary()}>"


def core_of(run: Any) -> RunCore:
    """The state of a run given as a ``Run``, an ``AsyncRun`` or a ``RunCore``."""
    core = run.aio if isinstance(run, Run) else run
    if not isinstance(core, RunCore):
        raise errors.SettingInvalid(f"runs: {run!r} is not a run; give Run, AsyncRun or run ids where accepted")
    return core
