"""``Client``: the synchronous mirror of ``AsyncClient``, with the same names meaning the same things; it drives the core.

In Jupyter its work runs on the kernel's own loop, so ``submit`` and ``sweep`` return at once and
runs move on while you work in other cells; elsewhere on one background loop thread. Calls that
wait (``wait_all``, ``run.wait``, ``balance``...) block, with a timeout where one makes sense.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._loop import LoopRunner
from ..api.account import Balance
from ..api.backend import Backend
from ..api.catalog.service import Catalog
from ..model.pricing import Cost, Price, PriceInput
from ..model.request import Request
from ..model.spec import ModelSpec
from ..model.sweep import SweepPlan
from ..model.validation import Report
from ..runs.run import RunCore, Subscriber
from .core import AsyncClient, Money_, as_request
from .references import ReferenceGate
from .run import AsyncRun, Run
from .sweep import Sweep

if TYPE_CHECKING:
    from ..images.gallery import Gallery
    from ..images.report import Full
    from ..ledger.facade import Ledger

__all__ = ["Client"]

T = TypeVar("T")


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

    def _sweep(self, runs: Sweep) -> Sweep:
        return Sweep([self._mirror(r) for r in runs], runs.plan)

    # --- what the client holds ----------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """Which service this client talks to (never the token)."""
        return self.aio.backend

    @property
    def ledger(self) -> Ledger | None:
        """The ledger recording this client's runs (``seqnb.connect`` records to one)."""
        return self.aio.ledger

    @property
    def gallery(self) -> Gallery | None:
        """The gallery downloading this client's images (``seqnb.connect`` attaches one)."""
        return self.aio.gallery

    @property
    def live_schema(self) -> bool:
        """Whether requests are validated with the catalog's live input schema."""
        return self.aio.live_schema

    def runs(self) -> list[Run]:
        """Every run of this client, oldest first."""
        return [self._mirror(r) for r in self.aio.runs()]

    def run(self, run_id: str) -> Run:
        """The run with this seqnb id (``KeyError`` if this client has none)."""
        return self._mirror(self.aio.run(run_id))

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every change of every run of this client (created included)."""
        return self.aio.subscribe(callback)

    def use_ledger(self, ledger: Ledger) -> None:
        """Record every run of this client in ``ledger`` from now on (and the ones it already has)."""
        self.aio.use_ledger(ledger)

    def use_gallery(self, gallery: Gallery) -> None:
        """Download every run's images into ``gallery`` as soon as it completes."""
        self.aio.use_gallery(gallery)

    @property
    def references(self) -> ReferenceGate:
        """How this client checks reference images before anything is spent (and the ones it checked)."""
        return self.aio.references

    # --- prices, balance, validation ----------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """RunComfy's catalog (or the emulator's): prices and live schemas."""
        return self.aio.catalog

    @property
    def last_balance(self) -> Balance | None:
        """The balance as last read (``balance()``, or a sweep's balance check)."""
        return self.aio.last_balance

    def price(self, model: str | ModelSpec) -> Price:
        """What one image of ``model`` costs here, and where that figure comes from."""
        return self.aio.price(model)

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

    def cost(self, request: Request) -> Cost:
        """A request's estimated cost at this client's prices (the request panel's estimate)."""
        return self.aio.cost(request)

    def validate(self, request: Request) -> Report:
        """Every problem of a request, as ``submit`` checks it (see ``AsyncClient.validate``); sends nothing."""
        return self.aio.validate(request)

    def balance(self) -> Balance:
        """The account's balance now, with its currency, source and when it was read (blocks a few seconds at most)."""
        return self.aio._money.read_balance()

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
        if wanted.references:  # local files become URLs first
            wanted = self._run(self.aio._references.resolve(wanted))
        run = self.aio._prepare(wanted, parent_id=parent_id, sweep_id=sweep_id)
        self._runner.spawn(self.aio._send_quietly(run, deadline))
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

    def plan(self, *args: Any, **kw: Any) -> SweepPlan:
        """The sweep that ``sweep()`` would send, validated and priced at this client's prices (nothing is sent)."""
        return self.aio.plan(*args, **kw)

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
        if kw.get("references") is not None:  # local files become URLs before the plan
            kw = self._run(self.aio._references.resolve_sweep(kw))
        runs = self.aio._prepare_sweep(*args, budget=budget, allow_over_balance=allow_over_balance, **kw)
        if not quiet:
            print(runs.plan.summary())
        self._runner.spawn(self.aio._send_all_quietly(list(runs), concurrency))
        return self._sweep(runs)

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
        planned, parents = self.aio._plan_promote(runs, changes, again)
        promoted = self.aio._prepare_plan(
            planned, budget=budget, allow_over_balance=allow_over_balance, parents=parents
        )
        if not quiet:
            print(promoted.plan.summary())
        self._runner.spawn(self.aio._send_all_quietly(list(promoted)))
        return self._sweep(promoted)

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

    def report(
        self,
        runs: Any,
        path: str | os.PathLike[str],
        *,
        full: Full = "none",
        thumb: int = 256,
        title: str | None = None,
    ) -> Path:
        """One self-contained HTML file of ``runs`` (a run or several), to open anywhere: see ``Ledger.report``."""
        return self.aio.report(runs, path, full=full, thumb=thumb, title=title)

    def export_images(self, runs: Any, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the runs' full-size frames as PNGs carrying their provenance, and ``runs.csv`` of their rows."""
        return self.aio.export_images(runs, directory)

    # --- the end ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called: the client watches and sends nothing more."""
        return self.aio.closed

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
