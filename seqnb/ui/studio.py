"""The Studio: request panel, job board, gallery and ledger in one widget, for one-line display.

import seqnb
seqnb.Studio()
"""

from __future__ import annotations

import asyncio
import html
import os
from typing import Any

import ipywidgets as w

from ..client import Client
from ..gallery import Gallery
from ..image_cache import ImageCache
from ..ledger import Ledger
from ..runs import RunEvent
from ..session import connect
from .job_board import JobBoard
from .ledger_view import LedgerView
from .request_panel import RequestPanel

__all__ = ["Studio"]


class Studio(w.VBox):
    """Everything for a prompt session in one widget; every button calls a plain method."""

    def __init__(
        self, client: Client | None = None, *, ledger: Ledger | str | os.PathLike[str] | None = None, recent: int = 4
    ) -> None:
        self.recent = recent
        self.backend = w.HTML()
        self.token = w.Password(placeholder="RunComfy token (kept in the kernel only)", continuous_update=False)
        self.connect_button = w.Button(description="Connect", icon="plug")
        self.connect_button.on_click(lambda _: self.connect_token())
        self.message = w.HTML()
        self.gallery_box = w.VBox([w.HTML("<i>completed runs appear here</i>")])
        self.tabs = w.Tab()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ledger_refresh_pending = False
        super().__init__([w.HBox([self.backend, self.token, self.connect_button]), self.message, self.tabs])
        self.use(client or connect(ledger=ledger if ledger is not None else True))

    def use(self, client: Client) -> None:
        """Build every panel around ``client`` (its ledger and gallery, attached here if missing)."""
        if client.ledger is None:
            Ledger().attach(client)
        if client.gallery is None:
            Gallery(ImageCache(), client.ledger).attach(client)
        self.client = client
        self.panel = RequestPanel(client, on_sent=lambda runs: self._show_tab(1))
        self.board = JobBoard(client)
        assert client.ledger is not None
        self.ledger_view = LedgerView(client.ledger, client, client.gallery)
        client.subscribe(self._on_event)
        self.tabs.children = [self.panel, self.board, self.gallery_box, self.ledger_view]
        for i, title in enumerate(["Compose", "Runs", "Gallery", "Ledger"]):
            self.tabs.set_title(i, title)
        kind = client.backend.kind
        colour = "#2e7d32" if kind == "emulator" else "#1565c0"
        self.backend.value = f"<span style='color:{colour}'><b>{html.escape(str(client.backend))}</b></span>"

    def _show_tab(self, index: int) -> None:
        self.tabs.selected_index = index

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
        if event.new == "completed" and event.old != "completed":
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            task = loop.create_task(self.show_recent_async())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if event.new in ("completed", "failed", "cancelled", "lost", "unknown"):
            self._refresh_ledger_soon()

    def _refresh_ledger_soon(self) -> None:
        """Re-read the ledger view at most once a second, however many runs end meanwhile."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.ledger_view.refresh()
            return
        if not self._ledger_refresh_pending:
            self._ledger_refresh_pending = True
            loop.call_later(1.0, self._refresh_ledger_now)

    def _refresh_ledger_now(self) -> None:
        self._ledger_refresh_pending = False
        self.ledger_view.refresh()

    async def show_recent_async(self) -> None:
        gallery = self.client.gallery
        if gallery is not None:
            await gallery.settle()
        self.show_recent()

    def show_recent(self) -> None:
        """Show the most recent completed runs in the Gallery tab."""
        gallery = self.client.gallery
        done = [r for r in self.client.runs() if r.status == "completed"]
        done.sort(key=lambda r: r.finished_at or 0, reverse=True)
        if gallery is None or not done:
            return
        self.gallery_box.children = [gallery.grid(done[: self.recent])]
