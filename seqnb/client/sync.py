"""``Client``: the synchronous mirror of ``AsyncClient``, with the same names meaning the same things; it drives the core.

In Jupyter its work runs on the kernel's own loop, so ``submit`` and ``sweep`` return at once and
runs move on while you work in other cells; elsewhere on one background loop thread. Calls that
wait (``wait_all``, ``run.wait``, ``balance``...) block, with a timeout where one makes sense.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._loop import LoopRunner
from ..api.account import Balance
from ..api.backend import Backend
from ..api.catalog.service import Catalog
from ..model.pricing import Price, PriceInput
from ..model.request import Request
from ..model.spec import ModelSpec
from ..runs.run import RunCore
from .core import AsyncClient, Money_, as_request, quietly
from .references import ReferenceGate
from .run import AsyncRun, Run, Same, mirrored
from .sweep import Sweep

if TYPE_CHECKING:
    from ..images.gallery import Gallery
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
