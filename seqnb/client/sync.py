"""``Client``: the synchronous mirror of ``AsyncClient``, with the same names meaning the same things; it drives the core.
``Run`` mirrors ``AsyncRun`` the same way: the same state through typed attributes, blocking where it awaits.

In Jupyter its work runs on the kernel's own loop, so ``submit`` and ``sweep`` return at once and
runs move on while you work in other cells; elsewhere on one background loop thread. Calls that
wait (``wait_all``, ``run.wait``, ``balance``...) block, with a timeout where one makes sense.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, cast, overload

from .._loop import LoopRunner
from ..api.account import Balance
from ..api.backend import Backend
from ..api.catalog.service import Catalog
from ..api.protocol import RunStatus
from ..ledger.marks import RunMarks
from ..model.pricing import Price, PriceInput
from ..model.request import Request
from ..model.spec import ModelSpec
from ..runs.run import NoteSource, RunCore
from .core import AsyncClient, AsyncRun, Money_, as_request, quietly
from .references import ReferenceGate
from .sweep import Sweep

if TYPE_CHECKING:
    from ..images.gallery import Gallery
    from ..ledger.facade import Ledger

__all__ = ["Client", "Run", "Same", "mirrored"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


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


class Client:
    """The synchronous client: ``AsyncClient``'s names and meanings; it never blocks a cell except to wait.

    ``submit``, ``sweep``, ``promote`` and ``rerun`` return the recorded runs at once (as the async
    ones do) and send them in the background; ``run.accepted()`` and ``run.wait()`` block when asked.
    """

    def __init__(self, token: str | Any = None, base_url: str | None = None, **kw: Any) -> None:
        self._runner = LoopRunner()
        self.aio = AsyncClient(token, base_url, **kw)
        """The ``AsyncClient`` this drives (the same runs, ledger and gallery)."""
        self._mirrors: dict[str, Run] = {}

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self._runner.run(coro, timeout)

    def _mirror(self, run: AsyncRun) -> Run:
        """The ``Run`` of one of this client's runs (always the same object)."""
        mirror = self._mirrors.get(run.id)
        if mirror is None:
            mirror = self._mirrors[run.id] = Run(run, self)
        return mirror

    def _send_later(self, runs: Sweep, quiet: bool, concurrency: int = 8) -> Sweep:
        """Print the plan's line unless ``quiet``, send the recorded runs in the background; their mirrors."""
        if not quiet:
            print(runs.plan.summary())
        self._runner.spawn(quietly(self.aio._send_all(list(runs), concurrency)))
        return Sweep([self._mirror(r) for r in runs], runs.plan)

    # --- what the client holds, prices, balance, validation: the core's own ------------------

    backend: Same[Backend] = Same()
    ledger: Same[Ledger | None] = Same()
    gallery: Same[Gallery | None] = Same()
    live_schema: Same[bool] = Same()
    references: Same[ReferenceGate] = Same()
    catalog: Same[Catalog] = Same()
    last_balance: Same[Balance | None] = Same()
    closed: Same[bool] = Same()
    subscribe = mirrored(AsyncClient.subscribe)
    use_ledger = mirrored(AsyncClient.use_ledger)
    use_gallery = mirrored(AsyncClient.use_gallery)
    price = mirrored(AsyncClient.price)
    cost = mirrored(AsyncClient.cost)
    validate = mirrored(AsyncClient.validate)
    spec_in_use = mirrored(AsyncClient.spec_in_use)

    def runs(self) -> list[Run]:
        """Every run of this client, oldest first."""
        return [self._mirror(r) for r in self.aio.runs()]

    def run(self, run_id: str) -> Run:
        """The run with this seqnb id (``KeyError`` if this client has none)."""
        return self._mirror(self.aio.run(run_id))

    @property
    def prices(self) -> dict[str, Price]:
        """Every model's price per image, as this client's estimates use it; set it to use your own."""
        return self.aio.prices

    @prices.setter
    def prices(self, value: PriceInput | None) -> None:
        self.aio.prices = value

    def refresh_prices(self, refresh: bool = True) -> dict[str, Price]:
        """Read the catalog again now (``refresh=False``: only what is not known yet); returns ``prices``."""
        return self._run(self.aio.refresh_prices(refresh))

    def balance(self) -> Balance:
        """The account's balance now, with its currency, source and when it was read (blocks a few seconds at most)."""
        return self.aio._read_balance()

    # --- one run --------------------------------------------------------------------------------

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
        """Check and record one request, then send it in the background; returns the run once it is recorded.

        ``run.accepted()`` blocks until the service answers (and raises a refusal); ``run.wait()``
        until the end. ``RequestInvalid`` here when the request breaks the model's rules.
        """
        wanted = as_request(request, prompt, kw)
        if wanted.references:  # local images: inline (their stand-ins), or hosted by the uploader
            wanted = self._run(self.aio.references.resolve(wanted))
        run = self.aio._prepare(wanted, parent_id=parent_id, sweep_id=sweep_id)
        self._runner.spawn(quietly(self.aio._send(run, deadline)))
        return self._mirror(run)

    def watch(self, run: Run, deadline: float | None = None) -> None:
        """Watch a run that has a request id (again), e.g. after a deadline or a restart."""
        self._run(_call(self.aio.watch, run.aio, deadline))

    def expected_end(self, run: Run | RunCore) -> float | None:
        """When the run should end (wall clock), from how long runs of its kind took; None while unknown."""
        return self.aio.expected_end(run.aio if isinstance(run, Run) else run)

    def refresh(self, run: Run) -> Run:
        """Ask the service for a run's state now."""
        self._run(self.aio.refresh(run.aio))
        return run

    def cancel(self, run: Run) -> str:
        """Cancel a run while it is queued; returns ``cancelled`` or ``not_cancellable``."""
        return self._run(self.aio.cancel(run.aio))

    def cancel_queued(self, runs: Iterable[Run] | None = None) -> dict[str, str]:
        """Cancel every run still queued (or not yet sent); returns outcome per run id."""
        return self._run(self.aio.cancel_queued(None if runs is None else [r.aio for r in runs]))

    # --- many runs ------------------------------------------------------------------------------

    plan = mirrored(AsyncClient.plan)
    plan_promote = mirrored(AsyncClient.plan_promote)

    def sweep(
        self,
        *args: Any,
        budget: Money_ | None = None,
        allow_over_balance: bool = False,
        concurrency: int = 8,
        quiet: bool = False,
        **kw: Any,
    ) -> Sweep:
        """Plan the grid (or take a plan from ``plan()``), check it (rules, ``budget``, the balance unless
        ``allow_over_balance``), record every run, then send them in the background; prints the plan's
        line unless ``quiet``. Nothing is recorded or sent when a check fails.
        """
        if kw.get("references") is not None:  # local images: inline or hosted, before the plan
            kw = self._run(self.aio.references.resolve_sweep(kw))
        runs = self.aio._prepare_sweep(*args, budget=budget, allow_over_balance=allow_over_balance, **kw)
        return self._send_later(runs, quiet, concurrency)

    def promote(
        self,
        runs: Any,
        *,
        budget: Money_ | None = None,
        allow_over_balance: bool = False,
        again: bool = False,
        quiet: bool = False,
        **changes: Any,
    ) -> Sweep:
        """Make chosen runs again with ``changes`` (``resolution="4K"``...), each a child of its original; see
        ``AsyncClient.promote``. Prints the plan's line unless ``quiet``."""
        planned = self.aio.plan_promote(runs, again=again, **changes)
        return self._send_later(
            self.aio._prepare_plan(planned, budget=budget, allow_over_balance=allow_over_balance), quiet
        )

    def wait_all(self, runs: Iterable[Run] | None = None, timeout: float | None = None) -> list[Run]:
        """Until every run ends; ``WaitTimeout`` after ``timeout`` seconds (the runs go on)."""
        targets = list(self.runs() if runs is None else runs)
        self._run(self.aio.wait_all([r.aio for r in targets]), timeout)
        return targets

    def settle(self, timeout: float | None = None) -> None:
        """Wait until the images of every completed run are downloaded and scored (see ``Gallery``)."""
        self._run(self.aio.settle(), timeout)

    # --- runs from elsewhere ------------------------------------------------------------------

    def resume(self, ledger: Ledger | None = None, *, scope: Literal["mine", "team"] = "mine") -> list[Run]:
        """Watch again every run of the ledger still in flight when its last session ended (see ``AsyncClient.resume``)."""
        return [self._mirror(r) for r in self._run(self.aio.resume(ledger, scope=scope))]

    def attach(
        self,
        request_id: str,
        model: str | ModelSpec,
        prompt: str | None = None,
        *,
        deadline: float | None = None,
        **known: Any,
    ) -> Run:
        """Adopt a job submitted elsewhere: recorded now, watched in the background (see ``AsyncClient.attach``)."""
        return self._mirror(self._run(self.aio.attach(request_id, model, prompt, deadline=deadline, **known)))

    def rerun(self, run: Run | AsyncRun | str, *, deadline: float | None = None, **changes: Any) -> Run:
        """Submit a recorded run's request again with ``changes`` (e.g. ``seed=7``), linked to it as its parent."""
        return self._mirror(self._run(self.aio.rerun(run, deadline=deadline, **changes)))

    # --- what travels ---------------------------------------------------------------------------

    report = mirrored(AsyncClient.report)
    export_images = mirrored(AsyncClient.export_images)

    # --- the end ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching and downloading; submits in flight are answered first."""
        self._run(self.aio.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<seqnb.Client {self.backend}>"


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


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
