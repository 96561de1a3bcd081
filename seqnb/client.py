"""The client: an async core over one httpx.AsyncClient, and a synchronous facade that drives it.

``seqnb.connect()`` picks the backend: with a token (argument, ``RUNCOMFY_TOKEN`` or the RunComfy
CLI's login), RunComfy's Model API at ``RUNCOMFY_BASE_URL`` or https://model-api.runcomfy.net;
without one, the embedded emulator. The code path is the same either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import warnings
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from . import errors
from ._loop import LoopRunner
from .auth import Secret, resolve_token
from .poller import Poller, PollPolicy
from .pricing import PriceInput
from .request import Request
from .runs import AsyncRun, Run, RunCore, RunEvent, Subscriber, normalize_status
from .sweep import SweepPlan, plan_sweep
from .transport import RetryPolicy, Transport

if TYPE_CHECKING:
    from .gallery import Gallery
    from .ledger import Ledger, Recorder

__all__ = ["AsyncClient", "Backend", "Client", "DuplicateSubmitWarning", "Sweep"]

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"

T = TypeVar("T")
FRESH_SEED_MAX = 2**31 - 1
"""Fresh seeds are drawn from 0 to this (the range the upstream API documents)."""
_seeds = random.Random()  # the global generator belongs to the user

# Rejections that mean the service certainly made no job (nothing charged).
_REJECTED = (errors.InputRejected, errors.AuthError, errors.ModelNotFound, errors.InsufficientBalance, errors.NotFound)
# After one of these, the rest of a sweep would fail the same way: stop sending.
_FATAL = (errors.AuthError, errors.InsufficientBalance, errors.ModelNotFound)


class DuplicateSubmitWarning(UserWarning):
    """An identical request is already in flight, in doubt, or done with the same seed."""


@dataclass(frozen=True)
class Backend:
    """Which service a client talks to. Never holds the token."""

    kind: str
    """``emulator`` (offline, local) or ``runcomfy``."""
    base_url: str
    token_source: str

    def __str__(self) -> str:
        if self.kind == "emulator":
            return f"offline emulator at {self.base_url} (no RunComfy token in use; nothing is charged)"
        return f"RunComfy Model API at {self.base_url} (token from {self.token_source})"


def _api_base(url: str) -> str:
    url = url.rstrip("/")
    return url if urlsplit(url).path not in ("", "/") else url + "/v1"


def _is_local(url: str) -> bool:
    from .emulator.server import is_loopback

    return is_loopback(urlsplit(url).hostname or "")


def resolve_backend(token: str | Secret | None, base_url: str | None) -> tuple[Backend, Secret, str]:
    """(backend, secret, API base URL) for the given or configured token and base URL."""
    secret = resolve_token(token)
    url = base_url or os.environ.get("RUNCOMFY_BASE_URL") or None
    if secret is None and url is None:
        from .emulator import embedded

        emu = embedded()
        return (
            Backend("emulator", emu.base_url, "embedded emulator"),
            Secret(emu.token, "embedded emulator"),
            emu.base_url + "/v1",
        )
    url = url or DEFAULT_BASE_URL
    if secret is None:
        if not _is_local(url):
            raise errors.AuthError(
                f"no RunComfy token for {url}: pass token=..., set RUNCOMFY_TOKEN, or run `runcomfy login`"
            )
        secret = Secret("local", "none (local server)")
    kind = "emulator" if _is_local(url) else "runcomfy"
    return Backend(kind, url.rstrip("/"), secret.source), secret, _api_base(url)


class Sweep(list[Any]):
    """The runs of one sweep, with its plan (counts and estimated cost)."""

    def __init__(self, runs: Iterable[Any], plan: SweepPlan) -> None:
        super().__init__(runs)
        self.plan = plan
        self.id = plan.id

    def __repr__(self) -> str:
        states: dict[str, int] = {}
        for run in self:
            states[run.status] = states.get(run.status, 0) + 1
        return f"<Sweep {self.plan.summary()}; " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + ">"


class AsyncClient:
    """The async core. Every method that does I/O is a coroutine; nothing here blocks."""

    def __init__(
        self,
        token: str | Secret | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_concurrency: int = 32,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceInput | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.backend, secret, api = resolve_backend(token, base_url)
        self.transport = Transport(
            api, secret, timeout=timeout, retry=retry, http=http, max_concurrency=max_concurrency
        )
        self.poller = Poller(self, poll)
        self.prices = prices
        self.max_concurrency = max_concurrency
        self._runs: dict[str, AsyncRun] = {}
        self.ledger: Ledger | None = None
        """The ledger recording this client's runs (``Ledger.attach`` sets it)."""
        self.gallery: Gallery | None = None
        """The gallery downloading this client's images (``Gallery.attach`` sets it)."""
        self.recorder: Recorder | None = None
        """This client's session in its ledger: writes each run before its submit may leave."""
        self._by_key: dict[str, list[AsyncRun]] = {}
        self._subscribers: list[Subscriber] = []
        self._submitted: dict[str, asyncio.Event] = {}

    def runs(self) -> list[AsyncRun]:
        """Every run of this client, oldest first."""
        return list(self._runs.values())

    def run(self, run_id: str) -> AsyncRun:
        """The run with this seqnb id (``KeyError`` if this client has none)."""
        return self._runs[run_id]

    # --- observers --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every change of every run of this client (created included)."""
        self._subscribers.append(callback)
        for run in self._runs.values():
            run.subscribe(callback)
        return lambda: self._unsubscribe(callback)

    def _unsubscribe(self, callback: Subscriber) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)
        for run in self._runs.values():
            run.unsubscribe(callback)

    # --- building runs (no I/O) ------------------------------------------------------------

    def prepare(self, request: Request, **meta: Any) -> AsyncRun:
        """Validate, create and announce a run, before anything is sent (so it can be recorded first)."""
        report = request.validate()
        if not report.ok:
            raise errors.RequestInvalid(report)
        self._warn_if_duplicate(request)
        if request.sent_seed is None and not request.uses_model_seed and request.model.role("seed"):
            # A fresh seed, sent and recorded (as -1 does in A1111): a seedless run is never a silent repeat.
            request = request.replace(seed=_seeds.randint(0, FRESH_SEED_MAX))
        run = AsyncRun(request=request, **meta).bind(self)
        if self.recorder is not None:
            self.recorder.record(run)  # write-or-refuse: a run that cannot be recorded is never sent
        self.adopt(run)
        run.emit(RunEvent(run, "created", "created", run.created_at, "created"))
        return run

    def adopt(self, run: AsyncRun) -> AsyncRun:
        """Take charge of a run (a new one, or one restored from a ledger)."""
        run.bind(self)
        self._runs[run.id] = run
        self._by_key.setdefault(run.request.key(), []).append(run)
        for callback in self._subscribers:
            run.subscribe(callback)
        return run

    def _warn_if_duplicate(self, request: Request) -> None:
        for other in self._by_key.get(request.key(), []):
            if other.status == "unknown":
                why = f"run {other.id} with the same request is in doubt (its submit may have reached the service)"
            elif not other.done:
                why = f"run {other.id} with the same request is still {other.status}"
            elif other.status == "completed" and request.seed is not None:
                why = f"run {other.id} already completed with the same seed: expect the same images"
            else:
                continue
            warnings.warn(f"identical request: {why}; you will be charged again", DuplicateSubmitWarning, stacklevel=4)
            return

    # --- I/O ---------------------------------------------------------------------------------

    async def send(self, run: AsyncRun, deadline: float | None = None) -> AsyncRun:
        """Submit a prepared run and start watching it."""
        if run.status != "created":
            return run
        done = self._submitted.setdefault(run.id, asyncio.Event())
        if self.recorder is not None:
            try:  # write-ahead: the ledger says "submitting" before the POST may leave
                self.recorder.record(run, status="submitting")
            except errors.LedgerError as exc:
                run.transition("failed", detail="not sent", error=f"not sent: {exc}")
                done.set()
                raise
        run.transition("submitting")
        sent_at = time.time()  # when the submit left: the job's clock starts about then, not when the answer came back
        try:
            body = await self.transport.submit(run.model, run.request.payload())
        except _REJECTED as exc:
            run.transition("failed", detail="rejected", error=f"not accepted, not charged: {exc}")
            raise
        except (errors.ConnectError, errors.RateLimited) as exc:
            run.transition("failed", detail="not sent", error=f"not sent: {exc}")
            raise
        except errors.SeqnbError as exc:
            run.transition(
                "unknown",
                detail="in doubt",
                error=f"the submit may or may not have reached the service ({exc}). Check your RunComfy "
                "requests before you submit it again, or you may pay twice",
            )
            raise
        finally:
            done.set()
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not request_id:
            run.transition("unknown", error=f"the service answered without a request_id: {str(body)[:200]}")
            raise errors.ServerError("submit answer has no request_id", body=body)
        run.transition("in_queue", request_id=str(request_id), submitted_at=sent_at)
        self.poller.watch(run, deadline=deadline)
        return run

    async def submit(
        self,
        request: Request | str,
        prompt: str | None = None,
        *,
        deadline: float | None = None,
        parent_id: str | None = None,
        sweep_id: str | None = None,
        **kw: Any,
    ) -> AsyncRun:
        """Validate, record and submit one request; returns once the service has accepted it."""
        run = self.prepare(_as_request(request, prompt, kw), parent_id=parent_id, sweep_id=sweep_id)
        await self.send(run, deadline)
        return run

    def watch(self, run: AsyncRun, deadline: float | None = None) -> None:
        """Watch a run that has a request id (again), e.g. after a deadline or a restart."""
        if run.id not in self._runs:
            self.adopt(run)
        self.poller.watch(run, delay=0, deadline=deadline)

    async def refresh(self, run: AsyncRun) -> AsyncRun:
        if run.request_id and not run.done:
            await self.poller.poll_once(run)
        return run

    async def cancel(self, run: AsyncRun) -> str:
        """Cancel a run while it is queued. Returns ``cancelled`` or ``not_cancellable``."""
        if run.status == "created":
            run.transition("cancelled", detail="never sent", cancel_outcome="cancelled")
            return "cancelled"
        if run.status == "submitting":
            await self._submitted.setdefault(run.id, asyncio.Event()).wait()
        if run.status == "cancelled":
            return "cancelled"
        if run.done or run.request_id is None:
            run.cancel_outcome = "not_cancellable"
            return "not_cancellable"
        rid = run.request_id
        body = await self.transport.call("POST", f"/requests/{rid}/cancel", request_id=rid)
        outcome = str(body.get("outcome") or "")
        status = normalize_status(body.get("status"))
        if outcome == "cancelled" or status == "cancelled":
            run.transition("cancelled", detail="cancelled", cancel_outcome="cancelled")
            return "cancelled"
        run.cancel_outcome = "not_cancellable"
        run.note = "the service says it is already running: it cannot be cancelled and will be charged"
        if status is not None and status != run.status:
            await self.poller.poll_once(run)
        run.emit(RunEvent(run, run.status, run.status, time.time(), "not_cancellable"))
        return "not_cancellable"

    async def resume(self, ledger: Ledger | None = None, *, scope: Literal["mine", "team"] = "mine") -> list[AsyncRun]:
        """Watch again every run of ``ledger`` (default: this client's) still in flight when its session ended.

        ``scope="mine"``: only runs of your own (same user) sessions; ``"team"``: anyone's (see ``Ledger.claim``).

        Queued and running runs are watched again (an id the service no longer knows becomes
        ``lost``); runs whose submit was in flight become ``unknown``, never resubmitted; runs
        written but never sent become ``failed`` ("not sent"). Returns the runs watched again.
        """
        store = self._ledger_for(ledger)
        assert self.recorder is not None
        resumed: list[AsyncRun] = []
        for restored in store.claim(self.recorder.session.id, scope):  # only runs no live session owns
            if restored.id in self._runs:
                continue  # already this client's: nothing to adopt twice
            run = self.adopt(restored)  # its changes are recorded from here on
            if run.status == "created":  # written, never sent: nothing to watch, nothing charged
                run.transition("failed", error="not sent: the session ended before its submit; rerun it")
            elif run.status == "submitting":
                run.transition(
                    "unknown",
                    error="the session ended while its submit was in flight: it may or may not have reached "
                    "the service. Check your RunComfy requests before you submit it again",
                )
            else:
                self.watch(run)
                resumed.append(run)
        return resumed

    def prepare_rerun(self, run: RunCore | Any | str, **changes: Any) -> AsyncRun:
        """A new prepared run with a recorded run's request and ``changes``, linked to it as its parent."""
        run_id = run if isinstance(run, str) else str(run.id)
        parent = self._runs.get(run_id) or self._ledger_for(None).restore(run_id)
        return self.prepare(parent.request.replace(**changes), parent_id=parent.id, sweep_id=parent.sweep_id)

    def _ledger_for(self, ledger: Ledger | None) -> Ledger:
        if ledger is not None:
            if ledger is not self.ledger:
                ledger.attach(self)
            return ledger
        if self.ledger is None:
            raise errors.LedgerError("this client has no ledger: pass one, or use seqnb.connect() (it attaches one)")
        return self.ledger

    def plan(self, *args: Any, **kw: Any) -> SweepPlan:
        """The sweep that ``sweep()`` would send, validated and priced (nothing is sent)."""
        kw.setdefault("prices", self.prices)
        return plan_sweep(*args, **kw)

    def prepare_sweep(self, *args: Any, budget: Decimal | str | float | None = None, **kw: Any) -> Sweep:
        plan = self.plan(*args, **kw).check(budget)
        runs: list[AsyncRun] = []
        reserve = self.recorder.reserve(plan) if self.recorder is not None else contextlib.nullcontext()
        try:
            with reserve:  # all rows or none, within the ledger's team budget (checked atomically)
                for request in plan.requests:
                    runs.append(self.prepare(request, sweep_id=plan.id))
        except errors.LedgerError as exc:  # nothing of the sweep leaves: the runs already written never will
            for run in runs:
                run.transition("failed", detail="not sent", error=f"not sent: the sweep stopped: {exc}")
            raise
        return Sweep(runs, plan)

    async def send_all(self, runs: Iterable[AsyncRun], concurrency: int = 8, deadline: float | None = None) -> None:
        """Submit prepared runs, ``concurrency`` at a time; stop sending after an auth or balance failure."""
        gate = asyncio.Semaphore(concurrency)
        stop: list[errors.SeqnbError] = []

        async def one(run: AsyncRun) -> None:
            async with gate:
                if stop:
                    run.transition("failed", detail="not sent", error=f"not sent: an earlier submit failed: {stop[0]}")
                    return
                try:
                    await self.send(run, deadline)
                except _FATAL as exc:
                    stop.append(exc)
                except errors.SeqnbError:
                    pass  # recorded on the run

        await asyncio.gather(*(one(r) for r in runs))

    async def sweep(
        self, *args: Any, budget: Decimal | str | float | None = None, concurrency: int = 8, **kw: Any
    ) -> Sweep:
        """Build the grid, validate it all, refuse it over ``budget``, then submit ``concurrency`` at a time."""
        runs = self.prepare_sweep(*args, budget=budget, **kw)
        await self.send_all(runs, concurrency)
        return runs

    async def wait_all(self, runs: Iterable[AsyncRun] | None = None, timeout: float | None = None) -> list[AsyncRun]:
        targets = list(self._runs.values() if runs is None else runs)
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in targets)), timeout)
        return targets

    async def cancel_queued(self, runs: Iterable[AsyncRun] | None = None) -> dict[str, str]:
        """Cancel every run still queued (or not yet sent); returns outcome per run id."""
        targets = [r for r in (self._runs.values() if runs is None else runs) if r.cancellable]
        outcomes = await asyncio.gather(*(self.cancel(r) for r in targets), return_exceptions=True)
        return {r.id: (o if isinstance(o, str) else f"error: {o}") for r, o in zip(targets, outcomes, strict=True)}

    async def aclose(self) -> None:
        for run in self._runs.values():
            self.poller.unwatch(run)
        await self.poller.stop()
        await self.transport.aclose()
        if self.recorder is not None:
            self.recorder.end()  # its runs in flight may be resumed by another session from now on

    def __repr__(self) -> str:
        return f"<seqnb.AsyncClient {self.backend}>"


def _as_request(request: Request | str, prompt: str | None, kw: dict[str, Any]) -> Request:
    if isinstance(request, Request):
        if prompt is not None or kw:
            return request.replace(**({"prompt": prompt} if prompt is not None else {}), **kw)
        return request
    return Request(request, prompt, **kw)


class Client:
    """The synchronous facade: same names as ``AsyncClient``; it never blocks the notebook except in ``wait``.

    In Jupyter its work runs on the kernel's own loop, so ``submit`` and ``sweep`` return at once
    and runs move on while you work in other cells.
    """

    def __init__(self, token: str | Secret | None = None, base_url: str | None = None, **kw: Any) -> None:
        self._runner = LoopRunner()
        self.aio = AsyncClient(token, base_url, **kw)
        self._wrappers: dict[str, Run] = {}

    @property
    def backend(self) -> Backend:
        return self.aio.backend

    @property
    def ledger(self) -> Ledger | None:
        """The ledger recording this client's runs (``seqnb.connect`` attaches one)."""
        return self.aio.ledger

    @property
    def gallery(self) -> Gallery | None:
        """The gallery downloading this client's images (``seqnb.connect`` attaches one)."""
        return self.aio.gallery

    @property
    def attached(self) -> bool:
        """True when work runs on the caller's loop (Jupyter), False on seqnb's background thread."""
        return self._runner.attached

    def wrap(self, run: AsyncRun) -> Run:
        """The synchronous ``Run`` of one of this client's async runs (always the same object)."""
        wrapper = self._wrappers.get(run.id)
        if wrapper is None:
            wrapper = self._wrappers[run.id] = Run(run, self)
        return wrapper

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine of this client's async core to completion, from synchronous code."""
        return self._runner.run(coro, timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start a coroutine on this client's loop and return at once (in Jupyter: the kernel's loop)."""
        self._runner.spawn(coro)

    def runs(self) -> list[Run]:
        """Every run of this client, oldest first."""
        return [self.wrap(r) for r in self.aio.runs()]

    def run(self, run_id: str) -> Run:
        """The run with this seqnb id."""
        return self.wrap(self.aio.run(run_id))

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self.aio.subscribe(callback)

    def submit(
        self,
        request: Request | str,
        prompt: str | None = None,
        *,
        deadline: float | None = None,
        parent_id: str | None = None,
        sweep_id: str | None = None,
        **kw: Any,
    ) -> Run:
        """Validate and record the run now, submit it in the background, and return at once."""
        run = self.aio.prepare(_as_request(request, prompt, kw), parent_id=parent_id, sweep_id=sweep_id)
        self._runner.spawn(_quietly(self.aio.send(run, deadline)))
        return self.wrap(run)

    def plan(self, *args: Any, **kw: Any) -> SweepPlan:
        return self.aio.plan(*args, **kw)

    def sweep(
        self,
        *args: Any,
        budget: Decimal | str | float | None = None,
        concurrency: int = 8,
        quiet: bool = False,
        **kw: Any,
    ) -> Sweep:
        """Build, validate and price the grid, refuse it over ``budget``, then submit in the background."""
        runs = self.aio.prepare_sweep(*args, budget=budget, **kw)
        if not quiet:
            print(runs.plan.summary())
        self._runner.spawn(self.aio.send_all(list(runs), concurrency))
        return Sweep([self.wrap(r) for r in runs], runs.plan)

    def wait_all(self, runs: Iterable[Run] | None = None, timeout: float | None = None) -> list[Run]:
        targets = list(self.runs() if runs is None else runs)
        self._runner.run(self.aio.wait_all([r.aio for r in targets]), timeout)
        return targets

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the images of every completed run are downloaded and scored (see ``Gallery``)."""
        if self.gallery is not None:
            self._runner.run(self.gallery.settle(), timeout)

    def cancel(self, run: Run) -> str:
        """Cancel a run while it is queued; returns ``cancelled`` or ``not_cancellable``."""
        return self._runner.run(self.aio.cancel(run.aio))

    def refresh(self, run: Run) -> Run:
        """Ask the service for a run's state now."""
        self._runner.run(self.aio.refresh(run.aio))
        return run

    def cancel_queued(self, runs: Iterable[Run] | None = None) -> dict[str, str]:
        return self._runner.run(self.aio.cancel_queued(None if runs is None else [r.aio for r in runs]))

    def watch(self, run: Run, deadline: float | None = None) -> None:
        self._runner.run(_call(self.aio.watch, run.aio, deadline))

    def resume(self, ledger: Ledger | None = None, *, scope: Literal["mine", "team"] = "mine") -> list[Run]:
        """Watch again every run of the ledger still in flight when its last session ended (see ``AsyncClient.resume``)."""
        return [self.wrap(r) for r in self._runner.run(self.aio.resume(ledger, scope=scope))]

    def rerun(self, run: Run | AsyncRun | str, **changes: Any) -> Run:
        """Submit a recorded run's request again with ``changes`` (e.g. ``seed=7``), linked to it as its parent."""
        core = self.aio.prepare_rerun(run, **changes)
        self._runner.spawn(_quietly(self.aio.send(core)))
        return self.wrap(core)

    def close(self) -> None:
        self._runner.run(self.aio.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<seqnb.Client {self.backend}>"


async def _quietly(coro: Any) -> None:
    with contextlib.suppress(errors.SeqnbError):  # recorded on the run; run.error and the board show it
        await coro


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)
