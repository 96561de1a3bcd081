"""``seqnb.connect()``: a client with its ledger and gallery, the usual way in; the kernel's session; the grids of runs.

One session per kernel: every client ``connect`` makes is registered in it (``kernel_session()``), and
every view of the kernel (the Studio's Runs, Gallery and Ledger tabs) shows its runs: those of every
client connected in it, and, read back once per ledger, your recent runs from before (a kernel
restarted, a notebook reopened), your runs still in flight resumed (``client.resume()``).

``compare_grid`` and ``contact_sheet`` draw runs from their own client's gallery (its image cache),
else from the default cache.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._loop import LoopRunner
from .api.auth import Secret
from .client.core import AsyncRun
from .client.sync import Client
from .errors import SeqnbError
from .images.cache import ImageCache
from .images.gallery import Gallery, cores_of
from .ledger.facade import Ledger
from .ledger.marks import RunMarks
from .ledger.sessions import user_here
from .model.labels import filled_labels
from .runs.run import RunCore, Subscriber

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "HISTORY_READ_BACK",
    "HISTORY_RUNS",
    "HISTORY_SWEEPS",
    "KernelSession",
    "compare_grid",
    "connect",
    "contact_sheet",
    "equip",
    "gallery_of",
    "kernel_session",
    "read_back",
]

log = logging.getLogger(__name__)

HISTORY_RUNS = 200
"""How many of your latest runs a view reads back from a ledger (with the whole of the newest sweeps among them)."""
HISTORY_SWEEPS = 5
"""How many of your newest sweeps are read back whole (the job board shows five)."""
HISTORY_READ_BACK = 20_000
"""At most this many runs are read back in all (about 100 MB in the kernel): the newest sweeps are read whole while
they fit; a sweep past it is read in part, its newest runs, and the session says so (``KernelSession.left_out``)."""

RunsCallback = Callable[[Sequence[RunCore]], None]


@dataclass
class _Follower:
    on_event: Subscriber
    on_runs: RunsCallback
    stops: list[Callable[[], None]] = field(default_factory=list)


class KernelSession:
    """The runs one kernel shows: every client registered in it (``connect`` registers each), and the recent runs of
    their ledgers read back once (``recall``). Views ``follow`` it; a client connected later joins every view.

    A session of its own (``KernelSession([client])``) shows one client's runs only (a lone ``JobBoard(client)``).
    """

    def __init__(self, clients: Iterable[Client] = ()) -> None:
        self._clients: list[Client] = []
        self._followers: list[_Follower] = []
        self.history: dict[str, RunCore] = {}
        """Runs read back from the ledgers that no client of the kernel holds (shown as they were left), by id."""
        self._recalled: set[str] = set()
        self.left_out: list[str] = []
        """What a read back left out, and where it is: one line per sweep read in part (``HISTORY_READ_BACK``)."""
        for client in clients:
            self.add(client)

    # --- the clients -------------------------------------------------------------------------------

    def add(self, client: Client) -> Client:
        """Register a client (once): every view following the session shows its runs from now on."""
        if not any(c is client for c in self._clients):
            self._clients.append(client)
            for follower in self._followers:
                follower.stops.append(client.subscribe(follower.on_event))
                runs = [r.aio for r in client.runs()]
                if runs:
                    follower.on_runs(runs)
        return client

    @property
    def clients(self) -> list[Client]:
        """The registered clients still open, oldest first (a closed one leaves the session)."""
        self._clients = [c for c in self._clients if not c.closed]
        return list(self._clients)

    def latest(self) -> Client | None:
        """The client registered last that is still open (what ``seqnb.Studio()`` uses), or None."""
        clients = self.clients
        return clients[-1] if clients else None

    def client_of(self, run: RunCore) -> Client | None:
        """The registered client that owns a run; None for a row read back from a ledger."""
        if isinstance(run, AsyncRun) and run.bound:
            for client in self._clients:
                if client.aio is run.client:
                    return client
        return None

    # --- the runs ---------------------------------------------------------------------------------

    def runs(self) -> list[RunCore]:
        """Every run of the kernel, oldest first: the clients' runs and the rows read back that none of them holds."""
        held: dict[str, RunCore] = {r.id: r for c in self.clients for r in c.aio.runs()}
        older = [r for run_id, r in self.history.items() if run_id not in held]
        return sorted([*older, *held.values()], key=lambda r: r.created_at)

    def read_only(self, run: RunCore) -> bool:
        """Whether a run is only shown here (a row read back from a ledger): no client of the kernel watches it."""
        return self.client_of(run) is None

    def follow(self, on_event: Subscriber, on_runs: RunsCallback) -> Callable[[], None]:
        """``on_runs(runs)`` now with every run of the kernel, then with the runs of each client registered or read
        back later; ``on_event(event)`` for every change of every client's run. Returns a function that stops it."""
        follower = _Follower(on_event, on_runs)
        self._followers.append(follower)
        follower.stops = [c.subscribe(on_event) for c in self.clients]
        runs = self.runs()
        if runs:
            on_runs(runs)

        def stop() -> None:
            if follower in self._followers:
                self._followers.remove(follower)
            for unsubscribe in follower.stops:
                unsubscribe()

        return stop

    def expected_end(self, run: RunCore) -> float | None:
        """When a run should end, from its own client's durations; None for a row read back, or while unknown."""
        client = self.client_of(run)
        return client.expected_end(run) if client is not None else None

    def ledgers(self) -> list[Ledger]:
        """The clients' ledgers, newest client first, one per place (two ``Ledger`` objects on one file count once)."""
        found: dict[str, Ledger] = {}
        for client in reversed(self.clients):
            if client.ledger is not None:
                found.setdefault(client.ledger.location, client.ledger)
        return list(found.values())

    def marks_of(self, run_ids: list[str]) -> dict[str, RunMarks]:
        """The runs' marks as they stand, from the clients' ledgers; none where a ledger cannot be read."""
        out: dict[str, RunMarks] = {}
        for ledger in self.ledgers():
            wanted = [i for i in run_ids if not out.get(i)]
            if not wanted:
                break
            try:
                found = ledger.marks_of(wanted)
            except SeqnbError:  # a view without marks, never a view that fails
                continue
            out.update({run_id: marks for run_id, marks in found.items() if marks})
        return out

    # --- after a restart ----------------------------------------------------------------------------

    def recall(self, client: Client) -> int:
        """Once per ledger in this kernel: resume your runs still in flight whose session is gone
        (``client.resume()``: watched again by ``client``), and read back your recent runs (``read_back``) to show
        as they were left. Returns how many runs were read back."""
        ledger = client.ledger
        if ledger is None or ledger.location in self._recalled:
            return 0
        self._recalled.add(ledger.location)
        self._resume(client)
        held = {r.id for c in self.clients for r in c.aio.runs()}
        try:
            rows, cut = read_back(ledger, skip=held | set(self.history))
        except SeqnbError as exc:  # the views show the live runs; the Ledger tab says what is wrong with the ledger
            log.warning("recent runs not read back from %s: %s", ledger, exc)
            return 0
        self.history.update({r.id: r for r in rows})
        for sweep, (read, total) in cut.items():
            said = (
                f"sweep {sweep}: its newest {read:,} of {total:,} runs read back (seqnb.session.HISTORY_READ_BACK); "
                f"all of them are in the Studio's Ledger tab and ledger.runs(sweep={sweep!r})"
            )
            self.left_out.append(said)
            log.warning("%s", said)
        for follower in list(self._followers):
            if rows:
                follower.on_runs(rows)
        return len(rows)

    def __repr__(self) -> str:
        clients, runs = len(self.clients), len(self.runs())
        said = "".join(f"; {line}" for line in self.left_out)
        return f"<KernelSession: {clients} client{'s' * (clients != 1)}, {runs:,} runs{said}>"

    @staticmethod
    def _resume(client: Client) -> None:
        """``client.resume()`` (mine): at once from a script; on the kernel's loop in Jupyter, where the resumed runs
        reach the views as events."""

        async def resume() -> None:
            try:
                await client.aio.resume()
            except SeqnbError as exc:
                log.warning("runs in flight not resumed: %s", exc)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            client._run(resume())
        else:
            LoopRunner().spawn(resume())


def read_back(
    ledger: Ledger,
    *,
    skip: Collection[str] = (),
    runs: int = HISTORY_RUNS,
    sweeps: int = HISTORY_SWEEPS,
) -> tuple[list[RunCore], dict[str, tuple[int, int]]]:
    """Your recent runs from a ledger, oldest first: the latest ``runs`` of yours and the whole of your newest
    ``sweeps`` sweeps among them, but those in ``skip``; labelled (a row written before labels by its differing words
    among its sweep's rows read). At most ``HISTORY_READ_BACK`` runs in all: with them, each sweep read in part, as
    (its runs read back, its runs of yours)."""
    me = user_here()
    latest = [i for i in ledger.run_ids(by=me, limit=runs) if i not in skip]
    found = {r.id: r for r in ledger.restore_many(latest)}
    cut: dict[str, tuple[int, int]] = {}
    room = HISTORY_READ_BACK - len(found)
    for sweep in list(dict.fromkeys(r.sweep_id for r in found.values() if r.sweep_id))[:sweeps]:
        ids = ledger.run_ids(sweep=sweep, by=me)  # the ids only (no rows loaded), newest first
        rest = [i for i in ids if i not in found and i not in skip][: max(room, 0)]
        found.update({r.id: r for r in ledger.restore_many(rest)})
        room -= len(rest)
        unread = sum(1 for i in ids if i not in found and i not in skip)
        if unread:
            cut[sweep] = (len(ids) - unread, len(ids))
    ordered = sorted(found.values(), key=lambda r: r.created_at)
    for run, label in zip(ordered, filled_labels([(r.label, r.request, r.sweep_id) for r in ordered]), strict=True):
        run.label = label
    return ordered, cut


_KERNEL = KernelSession()


def kernel_session() -> KernelSession:
    """This kernel's session: the clients ``connect`` made, and what every Studio shows."""
    return _KERNEL


def connect(
    token: str | Secret | None = None,
    base_url: str | None = None,
    *,
    ledger: Ledger | str | os.PathLike[str] | bool | None = True,
    download: bool | ImageCache | Gallery = True,
    **kw: Any,
) -> Client:
    """A client for RunComfy (with a token) or the embedded emulator (without one), registered in the kernel's
    session (every ``seqnb.Studio()`` shows its runs); see ``Client``.

    Every run is recorded in the ledger: ``ledger=True`` opens ``$SEQNB_LEDGER`` or
    ./seqnb-ledger.sqlite; pass a path, a ``Ledger``, or ``False`` for none. With ``download``
    (the default) each run's images are fetched into the image cache (``$SEQNB_CACHE`` or
    ~/.cache/seqnb/images, or the ``ImageCache`` given) as soon as it completes; give a ``Gallery``
    to choose its cache and scorer (``Gallery(scorer=my_clip_score)``).
    """
    return kernel_session().add(equip(Client(token, base_url, **kw), ledger=ledger, download=download))


def equip(
    client: Client,
    *,
    ledger: Ledger | str | os.PathLike[str] | bool | None = True,
    download: bool | ImageCache | Gallery = True,
) -> Client:
    """Give ``client`` a ledger and a gallery where it has none yet (``connect`` and the Studio use this)."""
    if client.ledger is None and ledger is not None and ledger is not False:
        client.use_ledger(ledger if isinstance(ledger, Ledger) else Ledger(None if ledger is True else ledger))
    if client.gallery is None and download is not False:
        gallery = download if isinstance(download, Gallery) else None
        if gallery is None:
            gallery = Gallery(download if isinstance(download, ImageCache) else ImageCache(), client.ledger)
        client.use_gallery(gallery)
    return client


def gallery_of(runs: Any) -> Gallery:
    """The gallery of the runs' own client (``seqnb.connect`` gives it one), else a new one over the default cache."""
    for core in cores_of(runs):
        if isinstance(core, AsyncRun) and core.bound and core.client.gallery is not None:
            return core.client.gallery
    return Gallery()


def compare_grid(runs: Any, size: int | None = None) -> ipywidgets.VBox:
    """Several runs as one grid widget: a row per run, frames aligned, labels naming what differs."""
    from .images.grid import grid  # ipywidgets loads only when a grid is asked for

    return grid(gallery_of(runs), runs, size)


def contact_sheet(runs: Any, path: str | os.PathLike[str], size: int | None = None) -> Path:
    """Several runs as a PNG contact sheet carrying their provenance."""
    return gallery_of(runs).contact_sheet(runs, path, size)
