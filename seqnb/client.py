"""The client: an async core over one httpx.AsyncClient, and a synchronous facade that drives it.

``seqnb.connect()`` picks the backend: with a token (argument, ``RUNCOMFY_TOKEN`` or the RunComfy
CLI's login), RunComfy's Model API at ``RUNCOMFY_BASE_URL`` or https://model-api.runcomfy.net;
without one, the embedded emulator. The code path is the same either way.

Prices come from the service's catalog (``seqnb.catalog``: read once, cached on disk for a day,
never blocking a submit for more than a short deadline) unless ``prices=`` or ``SEQNB_PRICES``
set them; the balance from the account API (``seqnb.account``: ``account_base_url=``,
``RUNCOMFY_API_BASE`` or https://api.runcomfy.net; the emulator itself for the emulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import warnings
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from . import errors, protocol
from .account import DEADLINE as BALANCE_DEADLINE
from .account import Balance, account_base_for, check_balance, fetch_balance
from .auth import Secret
from .backend import Backend, resolve_backend
from .catalog import Catalog, CatalogCache, PricedRequest, run_detached
from .poller import Poller, PollPolicy
from .pricing import Cost, Price, PriceInput, user_price
from .request import Request
from .runs import AsyncRun, RunCore, RunEvent, Subscriber
from .spec import ModelSpec, get_model, models
from .sweep import SweepPlan, plan_sweep
from .transport import RetryPolicy, Transport
from .validation import Report, validate_payload

if TYPE_CHECKING:
    from .gallery import Gallery
    from .ledger import Ledger
    from .ledger_recorder import Recorder

__all__ = ["AsyncClient", "Backend", "BalanceUnchecked", "DuplicateSubmitWarning", "Sweep", "as_request"]

T = TypeVar("T")
FRESH_SEED_MAX = 2**31 - 1
"""Fresh seeds are drawn from 0 to this (the range the upstream API documents)."""
_seeds = random.Random()  # the global generator belongs to the user

# Rejections that mean the service certainly made no job (nothing charged).
_REJECTED = (
    errors.InputRejected,
    errors.AuthError,
    errors.PermissionDenied,
    errors.ModelNotFound,
    errors.InsufficientBalance,
    errors.NotFound,
    errors.RequestRefused,
)
# After one of these, the rest of a sweep would fail the same way: stop sending.
_FATAL = (errors.AuthError, errors.PermissionDenied, errors.InsufficientBalance, errors.ModelNotFound)
_IN_DOUBT = "Check your RunComfy requests before you submit it again, or you may pay twice"


class DuplicateSubmitWarning(UserWarning):
    """An identical request is already in flight, in doubt, or done with the same seed."""


class BalanceUnchecked(UserWarning):
    """A sweep goes out without the balance check: the balance could not be read or compared."""


BALANCE_FRESH = 5.0
"""Seconds a balance read counts as "now" for a sweep's balance check."""

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What a request id may look like before it goes into a URL path (RunComfy's are UUIDs)."""


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
        account_base_url: str | None = None,
        catalog_cache: CatalogCache | None = None,
        live_schema: bool = False,
    ) -> None:
        self.backend, secret, api = resolve_backend(token, base_url)
        self.transport = Transport(
            api, secret, timeout=timeout, retry=retry, http=http, max_concurrency=max_concurrency
        )
        # seqnb's own emulator is polled as fast as is useful; anything else at RunComfy's own tools' pace
        pace = PollPolicy() if self.backend.kind == "emulator" else PollPolicy.for_service()
        self.poller = Poller(self, poll or pace)
        self.user_prices: PriceInput | None = prices
        """Prices the user set (``prices=``); with ``SEQNB_PRICES`` they win over the catalog's."""
        emulated = self.backend.kind == "emulator"
        self.catalog = Catalog(
            api, secret, label="emulator catalog" if emulated else "RunComfy catalog", cache=catalog_cache
        )
        self.live_schema = live_schema
        """Validate with the catalog's live input schema instead of the built-in spec (see ``validate``)."""
        self.account_base = account_base_for(self.backend, account_base_url)
        """Where the balance is read (``account_base_url=``, ``RUNCOMFY_API_BASE``, or RunComfy's account API)."""
        self._account_source = f"{'offline emulator' if emulated else 'RunComfy account'} at {self.account_base}"
        self._secret = secret
        self.last_balance: Balance | None = None
        """The balance as last read (``balance()``, or a sweep's balance check)."""
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

    # --- prices, balance, validation ----------------------------------------------------------

    def price(self, model: str | ModelSpec) -> Price:
        """What one image of ``model`` costs and where that figure comes from.

        ``prices=`` or ``SEQNB_PRICES`` first; else the catalog's ``base_price_usd`` (read once,
        cached for a day; this call waits for it at most ``seqnb.catalog.DEADLINE`` seconds);
        else the built-in list price, its source saying why the catalog's is not used.
        """
        spec = get_model(model)
        mine = user_price(spec, self.user_prices)
        if mine is not None:
            return mine
        self.catalog.load([m.id for m in models()])
        return self.catalog.price(spec)

    @property
    def prices(self) -> dict[str, Price]:
        """Every model's price per image, as this client's estimates use it (see ``price``)."""
        return {spec.id: self.price(spec) for spec in models()}

    @prices.setter
    def prices(self, value: PriceInput | None) -> None:
        self.user_prices = value

    async def load_prices(self) -> None:
        """Read what the catalog has not told yet (nothing when every price is the user's); never raises."""
        if any(user_price(m, self.user_prices) is None for m in models()):
            await self.catalog.aload([m.id for m in models()])

    async def refresh_prices(self, refresh: bool = True) -> dict[str, Price]:
        """Read the catalog again now (``refresh=False``: only what is not known yet); returns ``prices``."""
        await self.catalog.aload([m.id for m in models()], refresh=refresh)
        return self.prices

    def cost(self, request: Request) -> Cost:
        """A request's estimated cost at this client's prices (what the ledger records for it)."""
        return request.cost({request.model.id: self.price(request.model)})

    def _priced(self, request: Request) -> PricedRequest:
        return request if isinstance(request, PricedRequest) else PricedRequest.of(request, self.price(request.model))

    def validate(self, request: Request) -> Report:
        """Every problem of a request: by the built-in spec or, with ``live_schema=True``, by the catalog's live schema.

        The live schema replaces only the schema rules (fields, types, enums, limits, required);
        seqnb's own checks (the prompt's image count, the seed range) still apply. When the live
        schema is unknown or unusable, the built-in spec is used (with a warning saying why).
        """
        builtin = request.validate()
        if not self.live_schema:
            return builtin
        self.catalog.load([request.model.id])
        live = self.catalog.live_spec(request.model)
        if live is None:
            return builtin
        payload = request.payload()
        unset = tuple(p for p in builtin.problems if p.code == "unknown_field" and p.wire not in payload)
        report = validate_payload(live, payload)
        return Report(report.model, unset + report.problems, report.checked)

    async def balance(self) -> Balance:
        """The account's balance now (``RunComfy account at ...`` or the emulator's), also kept as ``last_balance``."""
        found = await fetch_balance(self.account_base, self._secret, self._account_source)
        self.last_balance = found
        return found

    def read_balance(self) -> Balance:
        """``balance()`` for synchronous code: blocks at most ``seqnb.account.DEADLINE`` seconds."""
        found = run_detached(
            lambda: fetch_balance(self.account_base, self._secret, self._account_source), BALANCE_DEADLINE + 1.0
        )
        self.last_balance = found
        return found

    def check_balance(self, plan: SweepPlan) -> None:
        """Refuse (``InsufficientBalance``) a plan whose estimate is over the balance read now.

        "Now": read by this call (a bounded blocking call), or by ``balance()`` within the last
        ``BALANCE_FRESH`` seconds, so async code can ``await client.balance()`` first and not block.

        When the balance cannot be read, or the plan is priced in another currency, the sweep is
        not refused: a ``BalanceUnchecked`` warning says so (the service refuses what it cannot charge).
        """
        if not plan.requests:
            return
        recent = self.last_balance
        try:
            if recent is not None and 0 <= time.time() - recent.fetched_at < BALANCE_FRESH:
                found = recent  # read a moment ago (e.g. awaited by an async sweep just before)
            else:
                found = self.read_balance()
        except errors.SeqnbError as exc:
            warnings.warn(
                f"sweep {plan.id} is sent without a balance check: the balance at {self.account_base} could not "
                f"be read ({str(exc).split(' - ')[0]}); the service refuses what the balance cannot pay",
                BalanceUnchecked,
                stacklevel=4,
            )
            return
        others = [c for c in plan.total if c != found.currency]
        if others:
            warnings.warn(
                f"sweep {plan.id}: the part priced in {', '.join(others)} cannot be checked against a balance in "
                f"{found.currency}",
                BalanceUnchecked,
                stacklevel=4,
            )
        check_balance(plan, found)

    # --- building runs (no I/O) ------------------------------------------------------------

    def prepare(self, request: Request, **meta: Any) -> AsyncRun:
        """Validate, create and announce a run, before anything is sent (so it can be recorded first)."""
        report = self.validate(request)
        if not report.ok:
            raise errors.RequestInvalid(report)
        self._warn_if_duplicate(request)
        if request.sent_seed is None and not request.uses_model_seed and request.model.role("seed"):
            # A fresh seed, sent and recorded (as -1 does in A1111): a seedless run is never a silent repeat.
            request = request.replace(seed=_seeds.randint(0, FRESH_SEED_MAX))
        run = AsyncRun(request=self._priced(request), **meta).bind(self)
        if self.recorder is not None:
            self.recorder.record(run)  # write-or-refuse: a run that cannot be recorded is never sent
        self.adopt(run)
        run.emit(RunEvent(run, "created", "created", run.created_at, "created"))
        return run

    def adopt(self, run: AsyncRun) -> AsyncRun:
        """Take charge of a run (a new one, or one restored from a ledger); it is priced at this client's prices."""
        run.request = self._priced(run.request)
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
        """Submit a prepared run and start watching it. Whatever happens, the run ends up in a state that says so."""
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
        payload = run.request.payload()
        try:
            body = await self.transport.submit(run.model, payload)
        except _REJECTED as exc:
            run.transition("failed", detail="rejected", error=f"not accepted, not charged: {exc}")
            raise
        except (errors.ConnectError, errors.RateLimited) as exc:
            run.transition("failed", detail="not sent", error=f"not sent: {exc}")
            raise
        except errors.Unsendable as exc:
            run.transition("failed", detail="not sent", error=f"not sent: {_unsendable(run, payload, exc)}")
            raise
        except errors.SeqnbError as exc:
            run.transition(
                "unknown",
                detail="in doubt",
                error=f"the submit may or may not have reached the service ({exc}). {_IN_DOUBT}",
            )
            raise
        except BaseException as exc:  # cancelled, or something nothing foresaw: the POST may have left
            run.transition(
                "unknown",
                detail="in doubt",
                error=f"the submit was interrupted ({type(exc).__name__}: {exc}); it may have reached the "
                f"service. {_IN_DOUBT}",
            )
            if not isinstance(exc, Exception):
                raise
            raise errors.TransportError(f"submit interrupted: {type(exc).__name__}: {exc}") from exc
        finally:
            done.set()
        request_id = protocol.request_id(body.get("request_id") if isinstance(body, dict) else None)
        if request_id is None:
            run.transition(
                "unknown",
                detail="in doubt",
                error=f"the service accepted the submit but answered no usable request_id ({protocol.quote(body)}): "
                f"seqnb cannot follow it. {_IN_DOUBT}",
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
        run = self.prepare(as_request(request, prompt, kw), parent_id=parent_id, sweep_id=sweep_id)
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
        """Cancel a run while it is queued. Returns ``cancelled`` or ``not_cancellable``.

        The cancel goes out at once, even while a 429 slows the client down. A refusal (any 4xx)
        is ``not_cancellable`` with the service's words in ``run.note``; 5xx and transport errors
        are retried, and raise once retries run out (the note says so).
        """
        if run.status == "created":
            run.transition("cancelled", detail="never sent", cancel_outcome="cancelled")
            return "cancelled"
        if run.status == "submitting":
            await self._submitted.setdefault(run.id, asyncio.Event()).wait()
        if run.status == "cancelled":
            return "cancelled"
        rid = protocol.request_id(run.request_id)
        if run.done or rid is None:
            run.cancel_outcome = "not_cancellable"  # its note keeps what it says about the run
            return "not_cancellable"
        try:
            body = await self.transport.call(
                "POST", f"/requests/{rid}/cancel", request_id=rid, route="cancel", gate=False
            )
        except (errors.RateLimited, errors.ServerError, errors.TransportError, errors.Timeout) as exc:
            self._say(run, f"cancel failed ({exc}); try again")
            raise
        except errors.APIError as exc:
            codes = ", ".join(
                x
                for x in (
                    f"HTTP {exc.status_code}" if exc.status_code else "",
                    f"error_code {exc.error_code}" if exc.error_code else "",
                )
                if x
            )
            outcome = self._not_cancellable(run, f"the service refused the cancel: {exc.message} ({codes})")
            if isinstance(exc, errors.NotFound):
                with contextlib.suppress(errors.SeqnbError):
                    await self.poller.poll_once(run)
            return outcome
        except errors.SeqnbError as exc:
            self._say(run, f"cancel failed ({exc}); try again")
            raise
        except Exception as exc:
            self._say(run, f"cancel failed ({type(exc).__name__}: {exc}); try again")
            raise errors.TransportError(f"cancel interrupted: {type(exc).__name__}: {exc}") from exc
        answer = protocol.read_cancel(body)
        if answer.outcome == "cancelled":
            if not run.transition("cancelled", detail="cancelled", cancel_outcome="cancelled") and not run.done:
                run.cancel_outcome = "cancelled"
                self._say(run, f"the service says cancelled while seqnb saw {run.status}; seqnb keeps watching the run")
            return "cancelled"
        if answer.outcome is None:
            why = f"{answer.problem}; seqnb keeps watching the run"
        else:
            why = "the service says it is already running: it cannot be cancelled and will be charged"
        if answer.outcome is None or (answer.status is not None and answer.status != run.status):
            with contextlib.suppress(errors.SeqnbError):
                await self.poller.poll_once(run)
        return self._not_cancellable(run, why)

    def _not_cancellable(self, run: AsyncRun, why: str) -> str:
        run.cancel_outcome = "not_cancellable"
        self._say(run, why, "not_cancellable")
        return "not_cancellable"

    @staticmethod
    def _say(run: AsyncRun, note: str, detail: str = "cancel") -> None:
        run.note = note
        run.emit(RunEvent(run, run.status, run.status, time.time(), detail))

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

    def prepare_attach(
        self, request_id: str, model: str | ModelSpec, prompt: str | None = None, **known: Any
    ) -> AsyncRun:
        """Adopt a job submitted elsewhere (RunComfy's CLI or playground), recorded before it is watched.

        ``known``: whatever is known of its request (``count=``, ``size=``, ``seed=``, wire fields);
        the rest stays unknown (the estimate assumes the model's default count). Raises
        ``SettingInvalid`` for a malformed request id, ``LedgerError`` when the ledger cannot record it.
        """
        rid = request_id.strip() if isinstance(request_id, str) else ""
        if not REQUEST_ID.fullmatch(rid):
            raise errors.SettingInvalid(
                f"request_id {request_id!r} is not a RunComfy request id: give the id the service answered "
                "(letters, digits, '-', '_', '.' or ':', at most 128 characters), e.g. from `runcomfy` or the playground"
            )
        for run in self._runs.values():
            if run.request_id == rid:
                return run  # attached (or submitted) here already
        request = self._priced(Request(model, prompt, **known))
        unknown = [] if prompt is not None else ["prompt"]
        if "count" not in known and request.model.count_field.wire not in known:
            unknown.append(f"count (estimated at {request.count})")
        note = "attached: submitted outside seqnb" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        run = AsyncRun(request=request, request_id=rid, status="in_queue", note=note).bind(self)
        if unknown:
            run.subscribe(_AttachedNote(note))  # before the ledger's and the gallery's: they record the note it sets
        if self.recorder is not None:
            self.recorder.record(run)  # write-or-refuse: a run the ledger cannot hold is not attached
        self.adopt(run)
        run.emit(RunEvent(run, run.status, run.status, run.created_at, "created"))
        return run

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
        """The sweep that ``sweep()`` would send, validated and priced at this client's prices (nothing is sent)."""
        if kw.get("prices") is None:
            kw["prices"] = self.prices
        plan = plan_sweep(*args, **kw)
        if self.live_schema:
            plan.reports = [self.validate(r) for r in plan.requests]
            plan.costs = [r.cost(kw["prices"]) for r, rep in zip(plan.requests, plan.reports, strict=True) if rep.ok]
        return plan

    def prepare_sweep(
        self,
        *args: Any,
        budget: Decimal | str | float | None = None,
        allow_over_balance: bool = False,
        **kw: Any,
    ) -> Sweep:
        """Plan, check (rules, ``budget``, and the balance unless ``allow_over_balance``), then prepare every run."""
        plan = self.plan(*args, **kw).check(budget)
        if not allow_over_balance:
            self.check_balance(plan)
        runs: list[AsyncRun] = []
        reserve = self.recorder.reserve(plan) if self.recorder is not None else contextlib.nullcontext()
        try:
            with reserve:  # all rows or none, within the ledger's team budget (checked atomically)
                for request, cost in zip(plan.requests, plan.costs, strict=True):
                    price = Price(cost.per_image, cost.currency, cost.source)
                    runs.append(self.prepare(PricedRequest.of(request, price), sweep_id=plan.id))
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
        """Until every run ends; ``seqnb.Timeout`` after ``timeout`` seconds (the runs go on)."""
        targets = list(self._runs.values() if runs is None else runs)
        try:
            async with asyncio.timeout(timeout) as scope:
                await asyncio.gather(*(r.wait() for r in targets))
        except TimeoutError:
            if not scope.expired():
                raise
            left = sum(not r.done for r in targets)
            raise errors.Timeout(
                f"{left} of {len(targets)} runs still running after {timeout} s: seqnb stopped waiting, the runs "
                "go on (wait again, or cancel them)"
            ) from None
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


def as_request(request: Request | str, prompt: str | None, kw: dict[str, Any]) -> Request:
    if isinstance(request, Request):
        if prompt is not None or kw:
            return request.replace(**({"prompt": prompt} if prompt is not None else {}), **kw)
        return request
    return Request(request, prompt, **kw)


class _AttachedNote:
    """Keeps an attached run's note honest: what was not known stays said, and a short-batch note that assumed a count is replaced."""

    def __init__(self, note: str) -> None:
        self.note = note

    def __call__(self, event: RunEvent) -> None:
        run = event.run
        if event.new == "completed":
            run.note = f"{self.note}; the service returned {len(run.images)} image(s)"
        elif not run.note.startswith(self.note) and not run.note.startswith("NOT YET IN THE LEDGER"):
            run.note = f"{self.note}; {run.note}" if run.note else self.note


def _unsendable(run: AsyncRun, payload: dict[str, Any], exc: errors.Unsendable) -> str:
    where = protocol.unsendable(payload)
    if where is None:
        return str(exc)
    field, position, char = where
    what = "the prompt" if field == run.request.model.prompt_field.wire else f"field {field!r}"
    return (
        f"{what} ({field!r}) holds a character that cannot be sent at position {position} "
        f"({char!r}, a lone surrogate): remove it and submit again"
    )
