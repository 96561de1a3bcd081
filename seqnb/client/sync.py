"""The synchronous facade: ``Client`` has the names of ``AsyncClient`` and drives it; nothing is implemented twice.

In Jupyter its work runs on the kernel's own loop, so ``submit`` and ``sweep`` return at once
and runs move on while you work in other cells; elsewhere on one background loop thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Coroutine, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .. import errors
from .._loop import LoopRunner
from ..api.auth import Secret
from ..api.backend import Backend
from ..model.pricing import Cost, Price
from ..model.request import Request
from ..model.spec import ModelSpec
from ..model.sweep import SweepPlan
from ..model.validation import Report
from ..runs.run import AsyncRun, Subscriber
from .core import AsyncClient, as_request
from .run import Run
from .sweeps import Sweep

if TYPE_CHECKING:
    from ..api.account import Balance
    from ..images.gallery import Gallery
    from ..images.report import Full
    from ..ledger.facade import Ledger

__all__ = ["Client"]

T = TypeVar("T")


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
        from ..images.gallery import Gallery, cores_of
        from ..images.share import report_runs

        gallery = self.gallery or Gallery(ledger=self.ledger)
        return report_runs(cores_of(runs), path, gallery, self.ledger, title=title, thumb=thumb, full=full)

    def export_images(self, runs: Any, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the runs' full-size frames as PNGs carrying their provenance, and ``runs.csv`` of their rows."""
        from ..images.gallery import Gallery, cores_of
        from ..images.share import export_runs

        done = export_runs(cores_of(runs), directory, self.gallery or Gallery(ledger=self.ledger), self.ledger)
        return [*done.images, done.table]

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
        """Validate and record the run now, submit it in the background, and return at once.

        A request with references returns once they are uploaded (local files) and, outside Jupyter,
        checked (``RequestInvalid`` naming the URL). In Jupyter (the kernel's loop) nothing blocks on
        the check: it runs before the submit in the background, and a bad reference fails the run
        as not sent, saying why (``run.error``, the job board).
        """
        wanted = as_request(request, prompt, kw)
        if wanted.references:
            wanted = self._runner.run(self.aio.references.resolve(wanted))
        run = self.aio.prepare(wanted, parent_id=parent_id, sweep_id=sweep_id)
        if run.request.references and not self._runner.attached:
            self._runner.run(self.aio.references.check([run]))  # RequestInvalid here, the run failed and not sent
        self._runner.spawn(_quietly(self.aio.send(run, deadline)))
        return self.wrap(run)

    def plan(self, *args: Any, **kw: Any) -> SweepPlan:
        return self.aio.plan(*args, **kw)

    @property
    def prices(self) -> dict[str, Price]:
        """Every model's price per image, as this client's estimates use it (see ``AsyncClient.price``)."""
        return self.aio.prices

    def price(self, model: str | ModelSpec) -> Price:
        """What one image of ``model`` costs here, and where that figure comes from."""
        return self.aio.price(model)

    def cost(self, request: Request) -> Cost:
        """A request's estimated cost at this client's prices (the request panel's estimate)."""
        return self.aio.cost(request)

    def validate(self, request: Request) -> Report:
        """Every problem of a request, as ``submit`` would check it (see ``AsyncClient.validate``); sends nothing."""
        return self.aio.validate(request)

    def refresh_prices(self, refresh: bool = True) -> dict[str, Price]:
        """Read the catalog again now (``refresh=False``: only what is not known yet); returns ``prices``."""
        return self._runner.run(self.aio.refresh_prices(refresh))

    def balance(self) -> Balance:
        """The account's balance now, with its currency, source and when it was read."""
        return self.aio.read_balance()

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
        return self.wrap(self._runner.run(self.aio.attach(request_id, model, prompt, deadline=deadline, **known)))

    def sweep(
        self,
        *args: Any,
        budget: Decimal | str | float | None = None,
        concurrency: int = 8,
        quiet: bool = False,
        **kw: Any,
    ) -> Sweep:
        """Build, validate and price the grid, refuse it over ``budget`` or the balance, then submit in the background.

        ``sweep(plan)`` sends a plan from ``plan()`` as it is, under the id it printed.

        ``allow_over_balance=True`` sends a sweep whose estimate is over the balance anyway.
        """
        if kw.get("references") is not None:  # local files become URLs before the plan
            kw = self._runner.run(self.aio.references.resolve_sweep(kw))
        runs = self.aio.prepare_sweep(*args, budget=budget, **kw)
        if not self._runner.attached:  # in Jupyter, send_all checks them in the background instead
            self._runner.run(self.aio.references.check(list(runs)))  # RequestInvalid here, and nothing is sent
        if not quiet:
            print(runs.plan.summary())
        self._runner.spawn(_quietly(self.aio.send_all(list(runs), concurrency)))
        return Sweep([self.wrap(r) for r in runs], runs.plan)

    def promote(
        self,
        runs: Any,
        *,
        budget: Decimal | str | float | None = None,
        allow_over_balance: bool = False,
        quiet: bool = False,
        **changes: Any,
    ) -> Sweep:
        """Make chosen runs again with ``changes`` (``resolution="4K"``, ``optimize="standard"``...) in the background.

        Each new run is a child of its original (``parent_id``); the lot is priced first and held to
        ``budget`` and the balance like a sweep (nothing sent when over). ``runs``: runs, run ids, or a
        frame of runs such as ``ledger.runs(verdict="picked")``.
        """
        core = self.aio.prepare_promote(runs, budget=budget, allow_over_balance=allow_over_balance, **changes)
        if not quiet:
            print(core.plan.summary().replace("sweep", "promote", 1))
        self._runner.spawn(self.aio.send_all(list(core)))
        return Sweep([self.wrap(r) for r in core], core.plan)

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

    def rerun(self, run: Run | AsyncRun | str, *, deadline: float | None = None, **changes: Any) -> Run:
        """Submit a recorded run's request again with ``changes`` (e.g. ``seed=7``), linked to it as its parent."""
        core = self.aio.prepare_rerun(run, **changes)
        self._runner.spawn(_quietly(self.aio.send(core, deadline)))
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
