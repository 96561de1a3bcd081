"""The client's core: an async client over one httpx.AsyncClient (``seqnb.client.sync`` drives it from sync code).

``seqnb.connect()`` picks the backend: with a token (argument, ``RUNCOMFY_TOKEN`` or the RunComfy
CLI's login), RunComfy's Model API at ``RUNCOMFY_BASE_URL`` or https://model-api.runcomfy.net;
without one, the embedded emulator. The code path is the same either way.

Here: prepare (validate, price, record), send, submit, watch. The client's other jobs have their
own modules, and its methods for them delegate there: prices and balance (``money``),
cancelling (``cancel``), resume, attach and rerun (``adopt``), sweeps (``sweeps``).
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .. import errors
from ..api import protocol
from ..api.account import Balance
from ..api.auth import Secret
from ..api.backend import resolve_backend
from ..api.catalog.cache import CatalogCache
from ..api.transport import RetryPolicy, Transport
from ..images.references import Uploader
from ..model.pricing import Cost, Price, PriceInput
from ..model.request import Request
from ..model.seeds import fresh_seed
from ..model.spec import ModelSpec
from ..model.sweep import SweepPlan
from ..model.validation import Report
from ..runs.pacing import PollPolicy
from ..runs.poller import Poller
from ..runs.run import AsyncRun, RunCore, RunEvent, Subscriber
from . import adopt, promote, references, sweeps
from .cancel import cancel_each, cancel_run
from .money import Money
from .submit import IN_DOUBT, duplicate_of, live_validate, submit_failure
from .sweeps import Sweep

if TYPE_CHECKING:
    from ..images.gallery import Gallery
    from ..ledger.facade import Ledger
    from ..ledger.recorder import Recorder

__all__ = ["AsyncClient", "DuplicateSubmitWarning", "as_request"]


class DuplicateSubmitWarning(UserWarning):
    """An identical request is already in flight, in doubt, or done with the same seed."""


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
        account_base_url: str | None = None,
        catalog_cache: CatalogCache | None = None,
        live_schema: bool = False,
        uploader: Uploader | None = None,
        reference_deadline: float = 30.0,
    ) -> None:
        self.backend, secret, api = resolve_backend(token, base_url)
        self.transport = Transport(
            api, secret, timeout=timeout, retry=retry, http=http, max_concurrency=max_concurrency
        )
        # seqnb's own emulator is polled as fast as is useful; anything else at RunComfy's own tools' pace
        pace = PollPolicy() if self.backend.kind == "emulator" else PollPolicy.for_service()
        self.poller = Poller(self.transport, poll or pace, cost_source=self.backend.kind)
        self.money = Money(self.backend, api, secret, prices, account_base_url, catalog_cache)
        """This client's prices and balance (its price, cost and balance methods delegate to it)."""
        self.catalog = self.money.catalog
        """RunComfy's catalog (or the emulator's): prices and live schemas."""
        self.account_base = self.money.account_base
        """Where the balance is read (``account_base_url=``, ``RUNCOMFY_API_BASE``, or RunComfy's account API)."""
        self.live_schema = live_schema
        """Validate with the catalog's live input schema instead of the built-in spec (see ``validate``)."""
        self.max_concurrency = max_concurrency
        self.references = references.ReferenceGate(self, uploader, reference_deadline)  # uploads and checks
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

    # --- prices, balance, validation ----------------------------------------------------------

    @property
    def user_prices(self) -> PriceInput | None:
        """Prices the user set (``prices=``); with ``SEQNB_PRICES`` they win over the catalog's."""
        return self.money.user_prices

    @user_prices.setter
    def user_prices(self, value: PriceInput | None) -> None:
        self.money.user_prices = value

    @property
    def last_balance(self) -> Balance | None:
        """The balance as last read (``balance()``, or a sweep's balance check)."""
        return self.money.last_balance

    def price(self, model: str | ModelSpec) -> Price:
        """What one image of ``model`` costs and where that figure comes from (see ``Money.price``)."""
        return self.money.price(model)

    @property
    def prices(self) -> dict[str, Price]:
        """Every model's price per image, as this client's estimates use it (see ``price``)."""
        return self.money.prices()

    @prices.setter
    def prices(self, value: PriceInput | None) -> None:
        self.money.user_prices = value

    async def load_prices(self) -> None:
        """Read what the catalog has not told yet (nothing when every price is the user's); never raises."""
        await self.money.load_prices()

    async def refresh_prices(self, refresh: bool = True) -> dict[str, Price]:
        """Read the catalog again now (``refresh=False``: only what is not known yet); returns ``prices``."""
        return await self.money.refresh_prices(refresh)

    def cost(self, request: Request) -> Cost:
        """A request's estimated cost at this client's prices (what the ledger records for it)."""
        return self.money.cost(request)

    def validate(self, request: Request) -> Report:
        """Every problem of a request: by the built-in spec or, with ``live_schema=True``, the live one (``live_validate``)."""
        return live_validate(self, request)

    async def balance(self) -> Balance:
        """The account's balance now (``RunComfy account at ...`` or the emulator's), also kept as ``last_balance``."""
        return await self.money.balance()

    def read_balance(self) -> Balance:
        """``balance()`` for synchronous code: blocks at most ``seqnb.api.account.DEADLINE`` seconds."""
        return self.money.read_balance()

    def check_balance(self, plan: SweepPlan) -> None:
        """Refuse (``InsufficientBalance``) a plan over the balance read now; warn when it cannot be checked (see ``Money``)."""
        self.money.check_balance(plan)

    # --- building runs (no I/O) ------------------------------------------------------------

    def prepare(self, request: Request, *, report: Report | None = None, **meta: Any) -> AsyncRun:
        """Validate, create and announce a run, before anything is sent (so it can be recorded first).

        ``report``: the request's validation when the caller has it already (a checked sweep plan's).
        """
        report = report or self.validate(request)
        if not report.ok:
            raise errors.RequestInvalid(report)
        if why := duplicate_of(self._by_key.get(request.key(), []), request):
            warn = f"identical request: {why}; you will be charged again"
            warnings.warn(warn, DuplicateSubmitWarning, stacklevel=errors.user_stacklevel())
        if request.sent_seed is None and not request.uses_model_seed and request.model.role("seed"):
            # A fresh seed, sent and recorded (as -1 does in A1111): a seedless run is never a silent repeat.
            request = request.replace(seed=fresh_seed())
        run = AsyncRun(request=self.money.priced(request), **meta).bind(self)
        if self.recorder is not None:
            self.recorder.record(run)  # write-or-refuse: a run that cannot be recorded is never sent
        self.adopt(run)
        run.emit(RunEvent(run, "created", "created", run.created_at, "created"))
        return run

    def adopt(self, run: AsyncRun) -> AsyncRun:
        """Take charge of a run (a new one, or one restored from a ledger); it is priced at this client's prices."""
        run.request = self.money.priced(run.request)
        run.bind(self)
        self._runs[run.id] = run
        self._by_key.setdefault(run.request.key(), []).append(run)
        for callback in self._subscribers:
            run.subscribe(callback)
        return run

    # --- I/O ---------------------------------------------------------------------------------

    async def send(self, run: AsyncRun, deadline: float | None = None) -> AsyncRun:
        """Submit a prepared run and start watching it. Whatever happens, the run ends up in a state that says so."""
        if run.status != "created":
            return run
        await self.references.check([run])  # before anything is written as sent: a bad reference fails it here
        done = self._submitted.setdefault(run.id, asyncio.Event())
        if self.recorder is not None:
            try:  # write-ahead: the ledger says "submitting" before the POST may leave (with the others of this moment)
                await self.recorder.record_submitting(run)
            except BaseException as exc:  # not written, taken over, or cancelled while it was: nothing leaves
                why = exc if isinstance(exc, errors.LedgerError) else "cancelled before its submit left"
                if isinstance(exc, errors.RunTakenOver):  # its owner now says what becomes of it, not this kernel
                    run.transition("failed", detail="taken over", error=str(exc))
                else:
                    run.transition("failed", detail="not sent", error=f"not sent: {why}")
                done.set()
                self._submitted.pop(run.id, None)
                raise
        run.transition("submitting")
        sent_at = time.time()  # when the submit left: the job's clock starts about then, not when the answer came back
        payload = run.request.payload()
        try:
            body = await self.transport.submit(run.model, payload)
        except BaseException as exc:  # refused, not sent, or in doubt: the run says which
            status, detail, error = submit_failure(run, payload, exc)
            run.transition(status, detail=detail, error=error)
            if isinstance(exc, errors.SeqnbError) or not isinstance(exc, Exception):
                raise  # seqnb's own errors, and cancellation, go on as they are
            raise errors.TransportError(f"submit interrupted: {type(exc).__name__}: {exc}") from exc
        finally:
            done.set()
            self._submitted.pop(run.id, None)  # whoever waits holds the event; nothing is kept per run
        request_id = protocol.request_id(body.get("request_id") if isinstance(body, dict) else None)
        if request_id is None:
            run.transition(
                "unknown",
                detail="in doubt",
                error=f"the service accepted the submit but answered no usable request_id ({protocol.quote(body)}): "
                f"seqnb cannot follow it. {IN_DOUBT}",
            )
            raise errors.ServerError("submit answer has no usable request_id", body=body)
        run.transition("in_queue", request_id=request_id, submitted_at=sent_at)
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
        await self.load_prices()  # awaited here, so that pricing it below never waits on the loop
        ready = await self.references.resolve(as_request(request, prompt, kw))  # local files become URLs
        run = self.prepare(ready, parent_id=parent_id, sweep_id=sweep_id)
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
        """Cancel a run while it is queued; returns ``cancelled`` or ``not_cancellable`` (see ``cancel``)."""
        if run.status == "submitting":  # cancel what the submit made, once the service has answered it
            await self._submitted.setdefault(run.id, asyncio.Event()).wait()
        return await cancel_run(self.transport, self.poller, run)

    async def cancel_queued(self, runs: Iterable[AsyncRun] | None = None) -> dict[str, str]:
        """Cancel every run still queued (or not yet sent); returns outcome per run id."""
        return await cancel_each(self._runs.values() if runs is None else runs, self.cancel)

    # --- runs from elsewhere ----------------------------------------------------------------

    async def resume(self, ledger: Ledger | None = None, *, scope: Literal["mine", "team"] = "mine") -> list[AsyncRun]:
        """Watch again every run of ``ledger`` (default: this client's) still in flight when its session ended.

        ``scope="mine"``: only runs of your own (same user) sessions; ``"team"``: anyone's. See ``adopt.resume``.
        """
        return adopt.resume(self, ledger, scope)

    def prepare_attach(
        self, request_id: str, model: str | ModelSpec, prompt: str | None = None, **known: Any
    ) -> AsyncRun:
        """Adopt a job submitted elsewhere (RunComfy's CLI or playground), recorded before it is watched.

        ``known``: whatever is known of its request (``count=``, ``size=``, ``seed=``, wire fields). See ``adopt``.
        """
        return adopt.prepare_attach(self, request_id, model, prompt, known)

    async def attach(
        self,
        request_id: str,
        model: str | ModelSpec,
        prompt: str | None = None,
        *,
        deadline: float | None = None,
        **known: Any,
    ) -> AsyncRun:
        """Adopt a job submitted elsewhere and watch it: its images are downloaded and it is recorded like any run.

        An id the service does not know becomes ``lost``. See ``prepare_attach``.
        """
        run = self.prepare_attach(request_id, model, prompt, **known)
        if not run.done and not run.watching:
            self.watch(run, deadline)
        return run

    def prepare_rerun(self, run: RunCore | Any | str, **changes: Any) -> AsyncRun:
        """A new prepared run with a recorded run's request and ``changes``, linked to it as its parent."""
        return adopt.prepare_rerun(self, run, changes)

    async def rerun(self, run: RunCore | Any | str, *, deadline: float | None = None, **changes: Any) -> AsyncRun:
        """Submit a recorded run again with ``changes`` (e.g. ``seed=2``), linked to it as its parent."""
        await self.load_prices()
        child = self.prepare_rerun(run, **changes)
        await self.send(child, deadline)
        return child

    # --- sweeps ------------------------------------------------------------------------------

    def plan(self, *args: Any, **kw: Any) -> SweepPlan:
        """The sweep that ``sweep()`` would send, validated and priced at this client's prices (nothing is sent)."""
        return sweeps.plan(self, *args, **kw)

    def prepare_sweep(
        self,
        *args: Any,
        budget: Decimal | str | float | None = None,
        allow_over_balance: bool = False,
        **kw: Any,
    ) -> Sweep:
        """Plan, check (rules, ``budget``, and the balance unless ``allow_over_balance``), then prepare every run."""
        return sweeps.prepare_sweep(self, *args, budget=budget, allow_over_balance=allow_over_balance, **kw)

    def prepare_promote(self, runs: Any, **kw: Any) -> Sweep:
        """The chosen runs planned again with changes, checked like a sweep, prepared (not sent); see ``promote``."""
        return promote.prepare_promote(self, runs, **kw)

    async def promote(
        self,
        runs: Any,
        *,
        budget: Decimal | str | float | None = None,
        allow_over_balance: bool = False,
        **changes: Any,
    ) -> Sweep:
        """Make chosen runs again with changes (``resolution="4K"``) as their children; ``seqnb.client.promote``."""
        promoted = self.prepare_promote(runs, budget=budget, allow_over_balance=allow_over_balance, **changes)
        await self.send_all(promoted)
        return promoted

    async def send_all(self, runs: Iterable[AsyncRun], concurrency: int = 8, deadline: float | None = None) -> None:
        """Check every reference, then submit prepared runs, ``concurrency`` at a time; stop after an auth or balance failure."""
        batch = await self.references.check(runs)  # all or none: one bad reference and nothing of the batch is sent
        await sweeps.send_all(self.send, batch, concurrency, deadline)

    async def sweep(
        self, *args: Any, budget: Decimal | str | float | None = None, concurrency: int = 8, **kw: Any
    ) -> Sweep:
        """Build the grid (or take a plan from ``plan()``), validate it all, refuse it over ``budget``, then submit ``concurrency`` at a time."""
        runs = self.prepare_sweep(*args, budget=budget, **await self.references.resolve_sweep(kw))
        await self.send_all(runs, concurrency)
        return runs

    async def wait_all(self, runs: Iterable[AsyncRun] | None = None, timeout: float | None = None) -> list[AsyncRun]:
        """Until every run ends; ``seqnb.Timeout`` after ``timeout`` seconds (the runs go on)."""
        return await sweeps.wait_all(list(self._runs.values() if runs is None else runs), timeout)

    async def aclose(self) -> None:
        for run in self._runs.values():
            self.poller.unwatch(run)
        await self.poller.stop()
        await self.transport.aclose()
        if self.recorder is not None:
            self.recorder.end()  # its runs in flight may be resumed by another session from now on

    def __repr__(self) -> str:
        return f"<seqnb.AsyncClient {self.backend}>"


def as_request(request: Request | str, prompt: str | None, kw: dict[str, Any]) -> Request:
    if isinstance(request, Request):
        if prompt is not None or kw:
            return request.replace(**({"prompt": prompt} if prompt is not None else {}), **kw)
        return request
    return Request(request, prompt, **kw)
