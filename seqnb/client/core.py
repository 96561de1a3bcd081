"""``AsyncClient``: one client of a RunComfy-compatible Model API (``seqnb.client.sync.Client`` drives it from sync code),
and ``AsyncRun``, a run it owns: its state with the calls that wait for, cancel and judge it.

``seqnb.connect()`` picks the backend: with a token (argument, ``RUNCOMFY_TOKEN`` or the RunComfy
CLI's login), RunComfy's Model API at ``RUNCOMFY_BASE_URL`` or https://model-api.runcomfy.net;
without one, the embedded emulator. The code path is the same either way.

A run's life here: checked (the model's rules, the prices), recorded in the ledger (write-or-refuse:
a run that cannot be recorded is never sent), then sent in the background: ``submit``, ``sweep``,
``promote`` and ``rerun`` return the recorded runs at once, and ``run.accepted()`` waits for the
service's answer. The client watches every run it sent (one poller), and takes in runs from
elsewhere: resumed from a ledger, attached by request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Coroutine, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .. import errors
from ..api import protocol
from ..api.auth import Secret
from ..api.backend import Backend, resolve_backend
from ..api.catalog.service import CatalogCache
from ..api.transport import RetryPolicy, Transport
from ..images.cache import ImageCache
from ..images.references import Uploader
from ..ledger.marks import RunMarks
from ..model.labels import derived_label
from ..model.labels import labels as run_labels
from ..model.pricing import Price, PriceInput
from ..model.request import PricedRequest, Request
from ..model.seeds import fresh_seed
from ..model.spec import ModelSpec, get_model
from ..model.sweep import SweepPlan, plan_sweep
from ..model.validation import Report, validate_payload
from ..runs.pacing import PollPolicy
from ..runs.poller import Poller
from ..runs.run import RunCore, RunEvent, Subscriber
from .money import Money
from .references import ReferenceGate
from .submit import FATAL, IN_DOUBT, duplicate_of, given_plan, promote_changes, run_ids, submit_failure
from .sweep import Sweep

if TYPE_CHECKING:
    from ..images.gallery import Gallery
    from ..images.report import Full
    from ..ledger.facade import Ledger
    from ..ledger.recorder import Recorder

__all__ = ["AsyncClient", "AsyncRun", "DuplicateSubmitWarning", "as_request", "core_of", "quietly"]


class DuplicateSubmitWarning(errors.SeqnbWarning):
    """An identical request is already in flight, in doubt, or done with the same seed."""


Money_ = Decimal | str | float


class AsyncClient(Money):
    """One client of the Model API: every method that talks to the service is a coroutine; nothing here blocks.

    ``ledger``: record every run there (``seqnb.connect`` opens one); ``gallery``: download each run's
    images when it completes. ``async with seqnb.AsyncClient() as client:`` closes it at the end.
    """

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
        ledger: Ledger | None = None,
        gallery: Gallery | None = None,
    ) -> None:
        self.backend: Backend
        self.backend, secret, api = resolve_backend(token, base_url)
        """Which service this client talks to (never the token)."""
        self._transport = Transport(
            api, secret, timeout=timeout, retry=retry, http=http, max_concurrency=max_concurrency
        )
        # seqnb's own emulator is polled as fast as is useful; anything else at RunComfy's own tools' pace
        pace = PollPolicy() if self.backend.kind == "emulator" else PollPolicy.for_service()
        self._poller = Poller(self._transport, poll or pace, cost_source=self.backend.kind)
        self._init_money(self.backend, api, secret, prices, account_base_url, catalog_cache)
        self.live_schema = live_schema
        """Validate with the catalog's live input schema instead of the built-in spec (see ``validate``)."""
        self.references = ReferenceGate(
            self.backend, self._reference_cache, uploader, reference_deadline, spec_in_use=self.spec_in_use
        )
        """How this client sends reference images (local ones inline) and checks them before anything is spent."""
        self._runs: dict[str, AsyncRun] = {}
        self._by_key: dict[str, list[AsyncRun]] = {}
        self._subscribers: list[Subscriber] = []
        self._sending: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ledger: Ledger | None = None
        """The ledger recording this client's runs (``use_ledger``)."""
        self.gallery: Gallery | None = None
        """The gallery downloading this client's images (``use_gallery``)."""
        self._recorder: Recorder | None = None
        self._closed = False
        if ledger is not None:
            self.use_ledger(ledger)
        if gallery is not None:
            self.use_gallery(gallery)

    # --- what the client holds ----------------------------------------------------------------

    def runs(self) -> list[AsyncRun]:
        """Every run of this client, oldest first."""
        return list(self._runs.values())

    def run(self, run_id: str) -> AsyncRun:
        """The run with this seqnb id (``KeyError`` if this client has none)."""
        return self._runs[run_id]

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

    def use_ledger(self, ledger: Ledger) -> None:
        """Record every run of this client in ``ledger`` from now on (and the ones it already has), as a new session."""
        if self.ledger is ledger:
            return
        # a run another session took over (this one was taken for gone) is watched by that session, not this client
        recorder = ledger.recorder(self.backend, on_taken_over=self._poller.unwatch, runs=self._runs)
        self.ledger, self._recorder = ledger, recorder
        self.subscribe(recorder.on_event)
        for run in self._runs.values():
            recorder.record(run)

    def use_gallery(self, gallery: Gallery) -> None:
        """Download every run's images into ``gallery`` as soon as it completes (on the client's loop)."""
        if self.gallery is gallery:
            return
        gallery.serve(self.backend)  # the emulator serves its images itself; RunComfy's come from its hosts only
        gallery.ledger = gallery.ledger or self.ledger
        self.gallery = gallery
        self.subscribe(gallery.on_event)

    def _reference_cache(self) -> ImageCache | None:
        return self.gallery.cache if self.gallery is not None else None

    # --- prices, balance, validation ----------------------------------------------------------

    def spec_in_use(self, model: str | ModelSpec) -> ModelSpec:
        """The spec a request for ``model`` is checked by: with ``live_schema=True``, the one the catalog's live schema
        draws; else the built-in one, with the live reference rules (the most references, ``validations``) whenever
        the catalog gave them (the built-in ones only offline, or when it cannot be read)."""
        spec = get_model(model)
        if self.live_schema or spec.references_field is not None:
            self.catalog.load([spec.id])  # known already after a submit's first await: no wait then
        live = self.catalog.live_spec(spec) if self.live_schema else None
        return live if live is not None else self.catalog.reference_limits(spec)

    def validate(self, request: Request) -> Report:
        """Every problem of a request, as ``submit`` checks it; sends nothing.

        By the built-in spec with the catalog's live reference rules (``spec_in_use``) or, with
        ``live_schema=True``, by the catalog's live schema: it replaces only the schema rules
        (fields, types, enums, limits, required); seqnb's own checks (the prompt's image count, the
        seed range) still apply. When the live schema is unknown or unusable, the built-in spec is
        used (with a warning saying why).
        """
        hosts = self.references.http_hosts()
        spec = self.spec_in_use(request.model)
        builtin = request.validate(http_hosts=hosts)
        if spec is request.model:
            return builtin
        payload = request.payload()
        unset = tuple(p for p in builtin.problems if p.code == "unknown_field" and p.wire not in payload)
        report = validate_payload(spec, payload, http_hosts=hosts)
        return Report(report.model, unset + report.problems, report.checked)

    # --- one run --------------------------------------------------------------------------------

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
        """Check and record one request, then send it in the background; returns the run once it is recorded.

        ``await run.accepted()`` waits for the service's answer (and raises a refusal); ``await
        run.wait()`` for the end. ``RequestInvalid`` here when the request breaks the model's rules.
        """
        await self._load_catalog()  # awaited here, so that pricing and checking it below never wait on the loop
        ready = await self.references.resolve(as_request(request, prompt, kw))  # local images: inline, or hosted
        run = self._prepare(ready, parent_id=parent_id, sweep_id=sweep_id)
        self._spawn(quietly(self._send(run, deadline)))
        return run

    def _prepare(self, request: Request, *, report: Report | None = None, **meta: Any) -> AsyncRun:
        """Validate, create, record and announce a run, before anything is sent.

        ``report``: the request's validation when the caller has it already (a checked sweep plan's); ``meta``: the
        run's ``sweep_id``, ``parent_id`` and ``label``.
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
        return self._take_new(AsyncRun(request=self._priced(request), **meta))

    def _take_new(self, run: AsyncRun) -> AsyncRun:
        """Label a new run (a lone run by its model and prompt) unless it has a label, record it (write-or-refuse: a run
        that cannot be recorded is never sent), adopt and announce it."""
        run.label = run.label or run_labels([run.request])[0]
        if self._recorder is not None:
            self._recorder.record(run)
        self._adopt(run)
        run.emit(RunEvent(run, run.status, run.status, run.created_at, "created"))
        return run

    def _adopt(self, core: RunCore) -> AsyncRun:
        """Take charge of a run (a new one, or one rebuilt from a ledger); it is priced at this client's prices."""
        run = AsyncRun.of(core, self)
        run.request = self._priced(run.request)
        run.service = self.backend.base_url
        self._runs[run.id] = run
        self._by_key.setdefault(run.request.key(), []).append(run)
        for callback in self._subscribers:
            run.subscribe(callback)
        return run

    async def _send(self, run: AsyncRun, deadline: float | None = None) -> AsyncRun:
        """Submit a prepared run and start watching it. Whatever happens, the run ends up in a state that says so."""
        if run.status != "created":
            return run
        done = self._sending.setdefault(run.id, asyncio.get_running_loop().create_future())
        try:
            await self.references.check([run])  # before anything is written as sent: a bad reference fails it here
            try:
                wire = await self.references.wire_payload(run.request)  # inline images as data URIs, for the body only
            except errors.SeqnbError as exc:
                run.transition("failed", detail="not sent", error=f"not sent: {exc}")
                raise
            if _cancelled(run):
                return run  # cancelled meanwhile: never sent
            if self._recorder is not None:
                try:  # write-ahead: the ledger says "submitting" before the POST may leave (with the others of this moment)
                    await self._recorder.record_submitting(run)
                except BaseException as exc:  # not written, taken over, or cancelled while it was: nothing leaves
                    if isinstance(exc, errors.RunTakenOver):  # its owner now says what becomes of it, not this client
                        run.transition("failed", detail="taken over", error=str(exc))
                    else:
                        why = exc if isinstance(exc, errors.LedgerError) else "cancelled before its submit left"
                        run.transition("failed", detail="not sent", error=f"not sent: {why}")
                    raise
                if _cancelled(run):  # cancelled while its row was written: the row says so again, nothing leaves
                    self._recorder.record(run)
                    return run
            run.transition("submitting")
            sent_at = time.time()  # when the submit left: the job's clock starts about then, not when it was answered
            payload = run.request.payload()  # as recorded: an inline image by its stand-in
            try:
                body = await self._transport.submit(run.model, wire)
            except BaseException as exc:  # refused, not sent, or in doubt: the run says which
                status, detail, error = submit_failure(run, payload, exc)
                run.transition(status, detail=detail, error=error)
                if isinstance(exc, errors.SeqnbError) or not isinstance(exc, Exception):
                    raise  # seqnb's own errors, and cancellation, go on as they are
                raise errors.TransportError(f"submit interrupted: {type(exc).__name__}: {exc}") from exc
            answered = body.get("request_id") if isinstance(body, dict) else None
            request_id = protocol.request_id(answered)
            if request_id is None:
                said = (
                    f"request_id {protocol.quote(answered, 160)}, which is not a RunComfy request id "
                    f"({protocol.REQUEST_ID_RULE})"
                    if answered is not None
                    else f"no request_id ({protocol.quote(body)})"
                )
                run.transition(
                    "unknown",
                    detail="in doubt",
                    error=f"the service accepted the submit but answered {said}: seqnb cannot follow it, and asks "
                    f"nothing about it. {IN_DOUBT}",
                )
                raise errors.ServerError("submit answer has no usable request_id", body=body)
            run.transition("in_queue", request_id=request_id, submitted_at=sent_at)
            self._poller.watch(run, deadline=deadline)
            return run
        except BaseException as exc:
            run._submit_error = exc if isinstance(exc, errors.SeqnbError) else None
            raise
        finally:
            if not done.done():
                done.set_result(None)
            self._sending.pop(run.id, None)  # whoever waits holds the future; nothing is kept per run

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background on this loop, kept until it ends (``aclose`` waits for submits in flight)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def watch(self, run: AsyncRun, deadline: float | None = None) -> None:
        """Watch a run that has a request id (again), e.g. after a deadline or a restart."""
        if run.id not in self._runs:
            run = self._adopt(run)
        self._poller.watch(run, delay=0, deadline=deadline)

    def expected_end(self, run: RunCore) -> float | None:
        """When the run should end (wall clock), from how long runs of its kind took; None while unknown."""
        return self._poller.expected_end(run)

    async def refresh(self, run: AsyncRun) -> AsyncRun:
        """Ask the service for a run's state now."""
        if run.request_id and not run.done:
            await self._poller.poll_once(run)
        return run

    async def cancel(self, run: AsyncRun) -> str:
        """Cancel a run while it is queued; returns ``cancelled`` or ``not_cancellable``, its outcome said on the run.

        A refusal (any 4xx) is ``not_cancellable`` with the service's words in ``run.note``; 5xx and transport
        errors are retried by the transport, and raise once retries run out (the note says so). The cancel goes
        out at once, even while a 429 slows the client down.
        """
        if run.status == "submitting":  # cancel what the submit made, once the service has answered it
            sending = self._sending.get(run.id)
            if sending is not None:
                await asyncio.shield(sending)
        if run.status == "created":
            run.transition("cancelled", detail="never sent", cancel_outcome="cancelled")
            return "cancelled"
        if run.status == "cancelled":
            return "cancelled"
        rid = protocol.request_id(run.request_id)
        if run.done or rid is None:
            run.cancel_outcome = "not_cancellable"  # its note keeps what it says about the run
            return "not_cancellable"
        try:
            body = await self._transport.call(
                "POST", f"/requests/{rid}/cancel", request_id=rid, route="cancel", gate=False
            )
        except errors.SeqnbError as exc:
            if not isinstance(exc, errors.APIError) or isinstance(exc, errors.RateLimited | errors.ServerError):
                _say_cancel(run, f"cancel failed ({exc}); try again")  # retried by the transport already
                raise
            outcome = _not_cancellable(run, f"the service refused the cancel: {exc.message} ({exc.codes})")
            if isinstance(exc, errors.RequestNotFound):
                with contextlib.suppress(Exception):  # a look after the answer: its failure changes no outcome
                    await self._poller.poll_once(run)
            return outcome
        except Exception as exc:
            _say_cancel(run, f"cancel failed ({type(exc).__name__}: {exc}); try again")
            raise errors.TransportError(f"cancel interrupted: {type(exc).__name__}: {exc}") from exc
        answer = protocol.read_cancel(body)
        if answer.outcome == "cancelled":
            if not run.transition("cancelled", detail="cancelled", cancel_outcome="cancelled") and not run.done:
                run.cancel_outcome = "cancelled"
                _say_cancel(
                    run, f"the service says cancelled while seqnb saw {run.status}; seqnb keeps watching the run"
                )
            return "cancelled"
        if answer.outcome is None:
            why = f"{answer.problem}; seqnb keeps watching the run"
        else:
            why = "the service says it is already running: it cannot be cancelled and will be charged"
        if answer.outcome is None or (answer.status is not None and answer.status != run.status):
            with contextlib.suppress(Exception):  # a look after the answer: its failure changes no outcome
                await self._poller.poll_once(run)
        return _not_cancellable(run, why)

    async def cancel_queued(self, runs: Iterable[AsyncRun] | None = None) -> dict[str, str]:
        """Cancel every run still queued (or not yet sent); returns outcome per run id."""
        targets = [r for r in (self._runs.values() if runs is None else runs) if r.cancellable]
        outcomes = await asyncio.gather(*(self.cancel(r) for r in targets), return_exceptions=True)
        return {r.id: (o if isinstance(o, str) else f"error: {o}") for r, o in zip(targets, outcomes, strict=True)}

    # --- many runs ------------------------------------------------------------------------------

    def plan(self, *args: Any, **kw: Any) -> SweepPlan:
        """The sweep that ``sweep()`` would send, validated and priced at this client's prices (nothing is sent)."""
        if "count" in kw:
            raise errors.SettingInvalid(
                "sweep: the image count axis is counts=, a list (counts=[2] for one value), not count="
            )
        if kw.get("prices") is None:
            kw["prices"] = self.prices
        kw = self.references.plan_sweep(kw)  # local references as the sweep would record them
        planned = plan_sweep(*args, **kw)
        if self.live_schema or any(r.references for r in planned.requests):  # the client knows its http hosts
            planned.reports = [self.validate(r) for r in planned.requests]
            planned.costs = [
                r.cost(kw["prices"]) for r, rep in zip(planned.requests, planned.reports, strict=True) if rep.ok
            ]
        return planned

    async def sweep(
        self,
        *args: Any,
        budget: Money_ | None = None,
        allow_over_balance: bool = False,
        concurrency: int = 8,
        **kw: Any,
    ) -> Sweep:
        """Plan the grid (or take a plan from ``plan()``), check it (rules, ``budget``, the balance unless
        ``allow_over_balance``), record every run, then send them ``concurrency`` at a time in the background.

        Returns once every run is recorded; nothing is recorded or sent when a check fails.
        """
        await self._load_catalog()
        kw = await self.references.resolve_sweep(kw)
        runs = self._prepare_sweep(*args, budget=budget, allow_over_balance=allow_over_balance, **kw)
        self._spawn(quietly(self._send_all(runs, concurrency)))
        return runs

    def _prepare_sweep(
        self, *args: Any, budget: Money_ | None = None, allow_over_balance: bool = False, **kw: Any
    ) -> Sweep:
        """Plan (or take the plan given), check, and record every run of a sweep, all or none; nothing is sent."""
        planned = given_plan(args, kw) or self.plan(*args, **kw)
        return self._prepare_plan(planned, budget=budget, allow_over_balance=allow_over_balance)

    async def promote(
        self,
        runs: Any,
        *,
        budget: Money_ | None = None,
        allow_over_balance: bool = False,
        again: bool = False,
        **changes: Any,
    ) -> Sweep:
        """Make chosen runs again with ``changes`` (``resolution="4K"``...), each a child of its original.

        Priced first and held to ``budget`` and the balance like a sweep (all or none), then sent in
        the background. ``runs``: runs, run ids, or a frame of runs (``ledger.runs(verdict="picked")``).
        A run that already has a promoted child with the same request is not made again unless ``again``.
        """
        await self._load_catalog()
        planned = self.plan_promote(runs, again=again, **changes)
        promoted = self._prepare_plan(planned, budget=budget, allow_over_balance=allow_over_balance)
        self._spawn(quietly(self._send_all(promoted)))
        return promoted

    def plan_promote(self, runs: Any, /, *, again: bool = False, **changes: Any) -> SweepPlan:
        """The promote that ``promote()`` would send, priced at this client's prices (nothing is sent): the picks each
        model can make with ``changes``, those left out named in a ``SeqnbWarning``; ``plan.parents`` their originals."""
        ids = run_ids(runs)
        if not ids:
            raise errors.SettingInvalid(
                "runs: nothing to promote; give the runs to make again, e.g. ledger.runs(verdict='picked')"
            )
        originals = [self._recorded(run_id, "promote") for run_id in ids]
        requests, parents, left = [], [], []
        for original in originals:
            request = promote_changes(original, changes)
            if isinstance(request, str):
                left.append(request)
            elif not again and self._has_child(original.id, request):
                left.append(f"run {original.id} was promoted with these changes already (again=True makes it again)")
            else:
                requests.append(request)
                parents.append(original.id)
        said = "; ".join(left)
        if not requests:
            raise errors.SettingInvalid(
                f"promote (make chosen runs again with changes, each a child of its original): nothing to send: {said}"
            )
        if left:
            warnings.warn(
                f"promote: {len(left)} of {len(ids)} runs are not made again: {said}",
                errors.SeqnbWarning,
                stacklevel=errors.user_stacklevel(),
            )
        planned = self.plan(requests=requests)
        by_id = {o.id: o for o in originals}
        planned.kind, planned.parents = "promote", parents
        planned.labels = [
            derived_label(by_id[p].label, by_id[p].request, r) for p, r in zip(parents, requests, strict=True)
        ]
        return planned

    def _has_child(self, parent_id: str, request: Request) -> bool:
        """Whether a run made from ``parent_id`` with the same request exists (here, or in the ledger)."""
        key = request.key()
        if any(
            r.parent_id == parent_id and r.request.key() == key for r in self._runs.values() if r.status != "failed"
        ):
            return True
        if self.ledger is None:
            return False
        return any(child.request.key() == key for child in self.ledger.children(parent_id))

    def _prepare_plan(
        self, planned: SweepPlan, *, budget: Money_ | None = None, allow_over_balance: bool = False
    ) -> Sweep:
        """Check a plan (rules, ``budget``, the balance unless ``allow_over_balance``), then prepare its runs, all or none
        (a promote's each the child of its original)."""
        if planned.sent:
            raise errors.SettingInvalid(
                f"sweep {planned.id} was sent already: plan it again (client.plan(...)) to send the same grid as a "
                "new sweep"
            )
        planned.check(budget)
        if not allow_over_balance:
            self._check_balance(planned)
        for note in planned.notes:  # said before anything is recorded or sent: models compared at different sizes
            warnings.warn(
                f"{planned.kind} {planned.id}: {note}", errors.SeqnbWarning, stacklevel=errors.user_stacklevel()
            )
        runs: list[AsyncRun] = []
        reserve = self._recorder.reserve(planned) if self._recorder is not None else contextlib.nullcontext()
        linked: list[str | None] = list(planned.parents) if planned.parents else [None] * planned.runs
        try:
            with reserve:  # all rows or none, within the ledger's team budget (checked atomically)
                checked = zip(planned.requests, planned.reports, planned.costs, linked, planned.labels, strict=True)
                for request, report, cost, parent, label in checked:  # validated by the plan: not again
                    prepared = PricedRequest.of(request, Price(cost.per_image, cost.currency, cost.source))
                    runs.append(
                        self._prepare(prepared, report=report, sweep_id=planned.id, parent_id=parent, label=label)
                    )
        except errors.LedgerError as exc:  # nothing of the sweep leaves: the runs already written never will
            for run in runs:
                run.transition("failed", detail="not sent", error=f"not sent: the {planned.kind} stopped: {exc}")
            raise
        planned.sent = True
        return Sweep(runs, planned)

    async def _send_all(self, runs: Iterable[AsyncRun], concurrency: int = 8) -> None:
        """Check every reference, then submit prepared runs, ``concurrency`` at a time; stop after an auth or balance
        failure. ``concurrency`` workers take the runs in order (a sweep of 10,000 makes no 10,000 tasks)."""
        runs = list(runs)
        try:
            batch = await self.references.check(runs)  # all or none: one bad reference and nothing is sent
        except errors.SeqnbError as exc:  # the runs say why (failed, not sent); accepted() raises it
            for run in runs:
                run._submit_error = exc
            raise
        queue = iter(batch)
        stop: list[errors.SeqnbError] = []

        async def worker() -> None:
            for run in queue:  # one iterator shared by the workers: each run is taken once
                if stop:
                    run.transition("failed", detail="not sent", error=f"not sent: an earlier submit failed: {stop[0]}")
                    run._submit_error = stop[0]
                    continue
                try:
                    await self._send(run)
                except FATAL as exc:
                    stop.append(exc)
                except errors.SeqnbError:
                    pass  # said on the run

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))

    async def wait_all(self, runs: Iterable[AsyncRun] | None = None, timeout: float | None = None) -> list[AsyncRun]:
        """Until every run ends; ``WaitTimeout`` after ``timeout`` seconds (the runs go on).

        One future for them all, settled by their events (not a waiting task per run).
        """
        targets = list(self._runs.values() if runs is None else runs)
        waiting = {run.id: run for run in targets if not run.done}
        for run in waiting.values():
            if not run.watching and run.request_id:
                self.watch(run)  # as run.wait() does: a run with a request id is watched while waited for
        if not waiting:
            return targets
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_change(event: RunEvent) -> None:
            if event.run.done and waiting.pop(event.run.id, None) is not None and not waiting and not ended.done():
                ended.set_result(None)

        stops = [run.subscribe(on_change) for run in waiting.values()]
        try:
            async with asyncio.timeout(timeout) as scope:
                await ended
        except TimeoutError:
            if not scope.expired():
                raise
            raise errors.WaitTimeout(
                f"{len(waiting)} of {len(targets)} runs still running after {timeout} s: seqnb stopped waiting, the "
                "runs go on (wait again, or cancel them)"
            ) from None
        finally:
            for stop in stops:
                stop()
        return targets

    # --- runs from elsewhere ------------------------------------------------------------------

    async def resume(self, ledger: Ledger | None = None, *, scope: Literal["mine", "team"] = "mine") -> list[AsyncRun]:
        """Adopt the runs of ``ledger`` (default: this client's) no live session owns; watch again those still in flight.

        ``scope="mine"``: only runs of your own (same user) sessions; ``"team"``: anyone's (see ``Ledger.claim``).
        Queued and running runs are watched again (an id the service no longer knows becomes
        ``lost``); runs whose submit was in flight become ``unknown``, never resubmitted; runs
        written but never sent become ``failed`` ("not sent"). Returns the runs watched again.
        """
        if ledger is not None:
            self.use_ledger(ledger)
        if self.ledger is None or self._recorder is None:
            raise errors.LedgerError("this client has no ledger: pass one, or use seqnb.connect() (it records to one)")
        resumed: list[AsyncRun] = []
        for restored in self.ledger.claim(self._recorder.session.id, scope):  # only runs no live session owns
            if restored.id in self._runs:
                continue  # already this client's: nothing to adopt twice
            run = self._adopt(restored)  # its changes are recorded from here on
            if run.status == "created":  # written, never sent: nothing to watch, nothing charged
                run.transition(
                    "failed", error="not sent: its session ended before the submit left, so nothing was charged"
                )
            elif run.status == "submitting":
                run.transition(
                    "unknown",
                    error="the session ended while its submit was in flight: it may or may not have reached "
                    "the service. Check your RunComfy requests before you submit it again",
                )
            else:
                self.watch(run)
                run.emit(RunEvent(run, run.status, run.status, time.time(), "resumed"))  # the views take it in
                resumed.append(run)
        return resumed

    async def attach(
        self,
        request_id: str,
        model: str | ModelSpec,
        prompt: str | None = None,
        *,
        deadline: float | None = None,
        **known: Any,
    ) -> AsyncRun:
        """Adopt a job submitted elsewhere (RunComfy's CLI or playground): recorded, then watched like any run.

        ``known``: whatever is known of its request (``count=``, ``size=``, ``seed=``, wire fields);
        the rest stays unknown (the estimate assumes the model's default count). An id the service
        does not know becomes ``lost``. ``SettingInvalid`` for a malformed request id.
        """
        rid = protocol.request_id(request_id.strip() if isinstance(request_id, str) else None)
        if rid is None:
            raise errors.SettingInvalid(
                f"request_id {request_id!r} is not a RunComfy request id: give the id the service answered "
                f"({protocol.REQUEST_ID_RULE}), e.g. from `runcomfy` or the playground"
            )
        for run in self._runs.values():
            if run.request_id == rid:
                return run  # attached (or submitted) here already
        request = self._priced(Request(model, prompt, **known))
        unknown = [] if prompt is not None else ["prompt"]
        if "count" not in known and request.model.count_field.wire not in known:
            unknown.append(f"count (estimated at {request.count})")
        note = "attached: submitted outside seqnb" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        run = AsyncRun(
            request=request,
            request_id=rid,
            status="in_queue",
            notes={"attach": note},
        )
        if unknown:
            run.subscribe(_attached_note(note))  # before the ledger's and the gallery's: they record the note it sets
        self._take_new(run)  # a run the ledger cannot hold is not attached
        if not run.done and not run.watching:
            self.watch(run, deadline)
        return run

    async def rerun(self, run: Any, *, deadline: float | None = None, **changes: Any) -> AsyncRun:
        """Submit a recorded run's request again with ``changes`` (e.g. ``seed=7``), linked to it as its parent.

        Returns once the new run is recorded; it is sent in the background, as by ``submit``.
        """
        await self._load_catalog()
        parent = self._recorded(run if isinstance(run, str) else core_of(run).id, "rerun")
        request = parent.request.replace(**changes)  # an inline image of the parent's found in the cache by its hash
        request = await self.references.resolve(request, recorded="references" not in changes)
        label = derived_label(parent.label, parent.request, request)
        child = self._prepare(request, parent_id=parent.id, sweep_id=parent.sweep_id, label=label)
        self._spawn(quietly(self._send(child, deadline)))
        return child

    def _recorded(self, run_id: str, what: str) -> RunCore:
        """A run of this client, or rebuilt from its ledger; ``SettingInvalid`` naming it when there is none."""
        known = self._runs.get(run_id)
        if known is not None:
            return known
        if self.ledger is None:
            raise errors.SettingInvalid(f"runs: cannot {what} {run_id!r}: this client has no run with that id")
        try:
            return self.ledger.restore(run_id)
        except errors.LedgerError as exc:
            raise errors.SettingInvalid(f"runs: cannot {what} {run_id!r}: {exc}") from exc

    async def settle(self, timeout: float | None = None) -> None:
        """Until the images of every completed run are downloaded and scored (see ``Gallery.settle``)."""
        if self.gallery is not None:
            await self.gallery.settle(timeout)

    # --- what travels ---------------------------------------------------------------------------

    def _gallery_or_new(self) -> Gallery:
        from ..images.gallery import Gallery

        return self.gallery or Gallery(ledger=self.ledger)

    def _chosen(self, runs: Any, what: str) -> list[RunCore]:
        """Runs given as runs or run ids: their states (a run id not of this client is read from its ledger)."""
        if isinstance(runs, RunCore) or hasattr(runs, "aio"):
            return [core_of(runs)]
        return [
            self._recorded(r, what) if isinstance(r, str) else core_of(r)
            for r in ([runs] if isinstance(runs, str) else runs)
        ]

    def report(
        self,
        runs: Any,
        path: str | os.PathLike[str],
        *,
        full: Full = "none",
        thumb: int = 256,
        title: str | None = None,
    ) -> Path:
        """One self-contained HTML file of ``runs`` to open anywhere: runs, run ids, or a frame of the ledger
        (``client.ledger.runs(verdict="picked")``, any filter). ``full="embed"`` puts the full-size images inside,
        ``"beside"`` writes them in a folder next to it."""
        from ..images.share import report_ledger, report_runs

        if hasattr(runs, "columns") and self.ledger is not None:  # a frame of the ledger: its rows, its cached frames
            return report_ledger(self.ledger, path, ids=run_ids(runs), title=title, thumb=thumb, full=full)
        chosen = self._chosen(runs, "report")
        return report_runs(chosen, path, self._gallery_or_new(), self.ledger, title=title, thumb=thumb, full=full)

    def export_images(self, runs: Any, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the runs' full-size frames as PNGs carrying their provenance, and ``runs.csv`` of their rows; ``runs``
        as for ``report``."""
        from ..images.share import export_ledger, export_runs

        if hasattr(runs, "columns") and self.ledger is not None:
            done = export_ledger(self.ledger, directory, ids=run_ids(runs))
        else:
            done = export_runs(self._chosen(runs, "export"), directory, self._gallery_or_new(), self.ledger)
        return [*done.images, done.table]

    # --- the end ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called: the client watches and sends nothing more."""
        return self._closed

    async def aclose(self) -> None:
        """Stop watching and downloading; submits in flight are answered first (never cut off mid-way)."""
        self._closed = True
        sending = [f for f in self._sending.values() if not f.done()]
        if sending:
            await asyncio.wait(sending, timeout=self._transport.deadline)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for run in self._runs.values():
            self._poller.unwatch(run)
        await self._poller.stop()
        if self.gallery is not None:
            await self.gallery.aclose()
        await self._transport.aclose()
        if self._recorder is not None:
            self._recorder.end()  # its runs in flight may be resumed by another session from now on

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<seqnb.AsyncClient {self.backend}>"


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


def core_of(run: Any) -> RunCore:
    """The state of a run given as a ``Run``, an ``AsyncRun`` or a ``RunCore``."""
    core = getattr(run, "aio", run)  # a Run (the sync mirror) holds its AsyncRun as aio
    if not isinstance(core, RunCore):
        raise errors.SettingInvalid(f"runs: {run!r} is not a run; give Run, AsyncRun or run ids where accepted")
    return core


def _cancelled(run: RunCore) -> bool:
    """Whether a run about to be sent was cancelled meanwhile (while its references or its row were awaited)."""
    return run.status != "created"


def _not_cancellable(run: RunCore, why: str) -> str:
    run.cancel_outcome = "not_cancellable"
    _say_cancel(run, why, "not_cancellable")
    return "not_cancellable"


def _say_cancel(run: RunCore, note: str, detail: str = "cancel") -> None:
    run.say("cancel", note)
    run.emit(RunEvent(run, run.status, run.status, time.time(), detail))


async def quietly(sending: Coroutine[Any, Any, Any]) -> None:
    """Send in the background: what goes wrong is said on the runs (run.error, run.accepted(), the board)."""
    with contextlib.suppress(errors.SeqnbError):
        await sending


def as_request(request: Request | str, prompt: str | None, kw: dict[str, Any]) -> Request:
    if isinstance(request, Request):
        if prompt is not None or kw:
            return request.replace(**({"prompt": prompt} if prompt is not None else {}), **kw)
        return request
    return Request(request, prompt, **kw)


def _attached_note(note: str) -> Subscriber:
    """Keeps an attached run's note honest: what was not known stays said, and a short-batch note that assumed a count
    is replaced."""

    def on_change(event: RunEvent) -> None:
        if event.new == "completed":
            event.run.say("attach", f"{note}; the service returned {len(event.run.images)} image(s)")
            event.run.say("result", "")  # its count was a guess, so a short-batch note would be too

    return on_change
