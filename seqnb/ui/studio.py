"""The Studio: request panel, job board, gallery and ledger in one widget, for one-line display.

import seqnb
client = seqnb.connect()
seqnb.Studio()

It shows the kernel's session (``seqnb.session.kernel_session``): the runs of every client connected
in the kernel, and, read back from the ledger once per kernel, your recent runs from before (a
restart), your runs still in flight resumed. ``Studio()`` uses the client connected last, or
connects one.

Its cost does not grow with the session: the board is one widget sending a bounded snapshot a few
times a second; the gallery and the ledger show a page each, and only while their tab is shown (a
hidden tab notes that it is stale and catches up when shown); every widget replaced is closed.
"""

from __future__ import annotations

import asyncio
import html
import os
from collections import Counter
from collections.abc import Callable

import ipywidgets as w

from ..api.account import Balance, balance_text
from ..client.submit import BALANCE_REFUSED
from ..client.sync import Client
from ..errors import SeqnbError
from ..images.fallback import HtmlBudget, StaticFallback, series_html, series_rows
from ..ledger.facade import Ledger
from ..model.labels import labels
from ..runs.run import TERMINAL, RunCore, RunEvent
from ..session import connect, equip, kernel_session
from .closing import close_tree
from .gallery_view import GalleryView
from .job_board import JobBoard
from .ledger_view import LedgerView
from .matrix_state import loop_running
from .request_panel import RequestPanel
from .throttle import Throttle

__all__ = ["Studio"]

TITLES = ("Compose", "Runs", "Gallery", "Ledger")
RUNS, GALLERY, LEDGER = 1, 2, 3


class Studio(StaticFallback, w.VBox):
    """Everything for a prompt session in one widget; every button calls a plain method.

    ``client``: the client to compose with (default: the one ``seqnb.connect()`` made last in this
    kernel, else a new one; with ``ledger=``, a new one on that ledger). Every tab shows the runs
    of the whole kernel.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        ledger: Ledger | str | os.PathLike[str] | None = None,
        recent: int = 4,
        interval: float = 1.0,
    ) -> None:
        self.recent = recent
        self.interval = interval
        """Least time between two live refreshes of the gallery and ledger tabs while they are shown."""
        self.session = kernel_session()
        """What the Studio shows: every client of the kernel and the runs read back from the ledger."""
        self.backend = w.HTML(layout=w.Layout(flex="1 1 auto"))
        self.balance = w.HTML(layout=w.Layout(flex="0 0 auto"))  # never squeezed onto two lines: the backend wraps
        """The account's balance, read when the Studio connects and after each sweep is sent."""
        self._balance_task: asyncio.Task[None] | None = None
        self.refusal = ""
        """Why the service last refused a submit for the balance (HTTP 402), shown beside it until the next client."""
        self.token = w.Password(placeholder="RunComfy token (kept in the kernel only)", continuous_update=False)
        self.connect_button = w.Button(description="Connect", icon="plug")
        self.connect_button.on_click(lambda _: self.connect_token())
        self.message = w.HTML()
        self.tabs = w.Tab()
        self.tabs.observe(lambda _: self._tab_changed(), "selected_index")
        self._parts: list[w.Widget] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._ledger_throttle = Throttle(interval, self._refresh_ledger_now)
        super().__init__(
            [
                w.HBox(
                    [self.backend, self.balance, self.token, self.connect_button], layout=w.Layout(align_items="center")
                ),
                self.message,
                self.tabs,
            ]
        )
        if client is None and ledger is None:
            client = self.session.latest()
        self.use(client or connect(ledger=ledger if ledger is not None else True))

    def use(self, client: Client) -> None:
        """Build every panel around ``client`` (its ledger and gallery, attached here if missing); the panels
        built for the previous client are closed."""
        equip(client)
        assert client.ledger is not None
        self.session.add(client)
        self.session.recall(client)  # once per ledger: your runs in flight resumed, your recent runs read back
        old, unsubscribe = self._parts, self._unsubscribe
        self.client = client
        shown = self.tabs.selected_index or 0
        self.panel = RequestPanel(client, on_sent=lambda runs: self._sent())
        self.board = JobBoard(client, session=self.session)
        self.gallery_view = GalleryView(
            client, session=self.session, page_size=self.recent, interval=self.interval, visible=shown == GALLERY
        )
        self.ledger_view = LedgerView(client.ledger, client, client.gallery, visible=shown == LEDGER)
        self._parts = [self.panel, self.board, self.gallery_view, self.ledger_view]
        self._unsubscribe = self.session.follow(self._on_event, lambda _: None)
        self.tabs.children = self._parts
        self.tabs.titles = TITLES
        if unsubscribe is not None:
            unsubscribe()
        for part in old:
            part.close()
        self.refusal = ""
        kind = client.backend.kind
        colour = "#2e7d32" if kind == "emulator" else "#1565c0"
        self.backend.value = f"<span style='color:{colour}'><b>{html.escape(str(client.backend))}</b></span>"
        self.refresh_balance()

    def refresh_balance(self) -> None:
        """Read the balance into the header: on the kernel's loop when there is one (never blocking it), else now."""
        aio = self.client.aio

        def show(found: Balance | BaseException) -> None:
            text = f"<span style='color:#555;white-space:nowrap'>&nbsp;· {html.escape(balance_text(found))}</span>"
            if self.refusal:
                text += f" <span style='color:#b00020'>{html.escape(self.refusal)}</span>"
            self.balance.value = text

        if not loop_running():
            try:
                show(self.client.balance())
            except SeqnbError as exc:
                show(exc)
            return

        async def read() -> None:
            try:
                show(await aio.balance())
            except SeqnbError as exc:
                show(exc)

        self._balance_task = asyncio.get_running_loop().create_task(read())

    def show_tab(self, title: str) -> None:
        """Bring a tab to the front by its title (Compose, Runs, Gallery, Ledger)."""
        self.tabs.selected_index = TITLES.index(title)

    def _sent(self) -> None:
        self.ledger_view.stale = True  # a new sweep for its list: caught up when the tab is shown
        self.refresh_balance()
        self.tabs.selected_index = RUNS

    def _tab_changed(self) -> None:
        shown = self.tabs.selected_index
        self.gallery_view.show(shown == GALLERY)
        self.ledger_view.show(shown == LEDGER)

    def connect_token(self, token: str | None = None) -> Client:
        """Connect to RunComfy with a typed token (or RUNCOMFY_TOKEN / the RunComfy CLI login).

        The field is read once and cleared at once, so the token is never synced back to the
        browser or saved with the notebook's widget state; it stays in the kernel.
        """
        typed = token if token is not None else self.token.value
        self.token.value = ""
        client = connect(token=typed or None, ledger=self.client.ledger or True)
        if client.backend.kind == "emulator" and not typed:
            self.message.value = "no token given, none in RUNCOMFY_TOKEN or a RunComfy login: still offline"
        else:
            self.message.value = f"connected: {html.escape(str(client.backend))}"
        self.use(client)
        return client

    def _on_event(self, event: RunEvent) -> None:
        if event.detail == BALANCE_REFUSED:  # shown with the balance, read again now
            self.refusal = "refused: insufficient balance. Add funds to your RunComfy account, then send again"
            self.refresh_balance()
        elif self.refusal and event.old == "submitting" and event.new == "in_queue":
            self.refusal = ""  # the service accepts submits again
            self.refresh_balance()
        if event.new not in TERMINAL or event.old == event.new:
            return
        if not self.ledger_view.visible or not self._ledger_throttle.poke():  # hidden, or no loop: caught up when shown
            self.ledger_view.stale = True

    def _refresh_ledger_now(self) -> None:
        """Re-read the ledger's page at most once per ``interval``, however many runs end meanwhile."""
        if self.ledger_view.visible:
            self.ledger_view.refresh(full=False)

    def show_recent(self) -> None:
        """Show the most recent completed runs in the Gallery tab (its first page, rebuilt now)."""
        self.gallery_view.page = 0
        self.gallery_view.refresh()

    def close(self) -> None:
        """Stop following the client and close every widget of the Studio."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._ledger_throttle.cancel()
        for part in self._parts:
            part.close()
        close_tree(list(self.children))
        super().close()

    def static_html(self, budget: HtmlBudget | None = None) -> str:
        """The session as HTML, for saved notebooks: backend, the runs per status, the newest runs by their labels
        (the whole prompt on hover), the latest series; and that the widget is live only with a running kernel."""
        budget = budget or HtmlBudget()
        runs = self.session.runs()
        counts = Counter(run.status for run in runs)
        tally = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items())) or "no runs yet"
        out = budget.text(
            f"<p><b>seqnb Studio</b> · {html.escape(str(self.client.backend))}{self.balance.value}</p>"
            "<p><i>A saved copy: the Studio is live only with a running kernel (run its cell again).</i></p>"
            f"<p>{len(runs)} run(s) in this session: {html.escape(tally)}</p>"
        )
        out += budget.text(runs_table(runs[::-1][:STATIC_RUNS], len(runs)))
        gallery = self.client.gallery
        recent = [self.gallery_view.completed[i] for i in self.gallery_view.page_ids()]
        if gallery is not None and recent:
            out += series_html(series_rows(gallery, [r for r in recent if gallery.ready(r)], gallery.thumb), budget)
        return out

    def static_text(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        return f"<seqnb.Studio {self.client.backend}>"


STATIC_RUNS = 50
"""How many of the newest runs the Studio's saved copy lists."""


def runs_table(runs: list[RunCore], total: int) -> str:
    """The runs as an HTML table (newest first): label (the whole prompt as its title), model, seed, status, images."""
    if not runs:
        return ""
    rows = []
    for run in runs:
        label = run.label or labels([run.request])[0]
        images = f"{len(run.images)}/{run.requested}" if run.status == "completed" else f"-/{run.requested}"
        cells = (
            f'<td title="{html.escape(run.request.prompt or "")}">{html.escape(label)}</td>'
            f"<td>{html.escape(run.request.model.short_name)}</td>"
            f"<td>{html.escape(str(run.request.resolved().get('seed')))}</td>"
            f"<td>{html.escape(run.status.replace('_', ' '))}</td><td>{images}</td>"
            f"<td><code>{html.escape(run.id)}</code></td>"
        )
        rows.append(f"<tr>{cells}</tr>")
    more = f"<p><small>the newest {len(runs)} of {total} run(s)</small></p>" if total > len(runs) else ""
    head = "<tr><th>run</th><th>model</th><th>seed</th><th>status</th><th>images</th><th>id</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>{more}"
