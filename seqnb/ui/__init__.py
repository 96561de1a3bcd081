"""ipywidgets panels: request panel, job board, ledger view, and the Studio that composes them."""

from __future__ import annotations

from .job_board import JobBoard
from .ledger_view import LedgerView
from .request_panel import RequestPanel, parse_seeds
from .studio import Studio

__all__ = ["JobBoard", "LedgerView", "RequestPanel", "Studio", "parse_seeds"]
