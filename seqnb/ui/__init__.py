"""Widgets: request panel, job board, gallery and ledger views, and the Studio that composes them."""

from __future__ import annotations

from .gallery_view import GalleryView
from .job_board import JobBoard
from .kernel_comms import answer_widget_messages
from .ledger_view import LedgerView
from .request_panel import RequestPanel, parse_seeds
from .studio import Studio

answer_widget_messages()  # in a kernel: widgets used while a cell awaits keep reaching it

__all__ = ["GalleryView", "JobBoard", "LedgerView", "RequestPanel", "Studio", "parse_seeds"]
