"""seqnb: prompt sessions with Seedream 4.0/4.5 sequential models on RunComfy's Model API, from Jupyter.

The public names load on first use (PEP 562), so ``import seqnb`` and ``seqnb --help`` stay
fast: the widgets, pandas and the HTTP engine come in only when something needs them.

``_EXPORTS`` is the one list of the public surface: ``__all__`` and the lazy lookup are made from
it, and ``tests/test_public_api.py`` checks the type-checking imports below against it. Names
that left the surface still work for one release (``_RENAMED``), with a ``DeprecationWarning``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__ as __version__

_EXPORTS: dict[str, str] = {
    # the session: clients, the Studio, the views of runs
    "AsyncClient": ".client.core",
    "Client": ".client.sync",
    "connect": ".session",
    "Studio": ".ui.studio",
    "matrix": ".ui.matrix_view",
    "duel": ".ui.duel_view",
    "compare_grid": ".session",
    "contact_sheet": ".session",
    # what a session is made of
    "Request": ".model.request",
    "Run": ".client.sync",
    "AsyncRun": ".client.core",
    "RunEvent": ".runs.run",
    "Sweep": ".client.sweep",
    "SweepPlan": ".model.sweep",
    "models": ".model.spec",
    "Cost": ".model.pricing",
    "Price": ".model.pricing",
    "Balance": ".api.account",
    "Ledger": ".ledger.facade",
    "Gallery": ".images.gallery",
    "ImageCache": ".images.cache",
    # errors and warnings (the tree is drawn in seqnb.errors)
    "SeqnbError": ".errors",
    "RequestInvalid": ".errors",
    "SettingInvalid": ".errors",
    "NotFound": ".errors",
    "APIError": ".errors",
    "AuthError": ".errors",
    "Refused": ".errors",
    "InsufficientBalance": ".errors",
    "RateLimited": ".errors",
    "ServerError": ".errors",
    "TransportError": ".errors",
    "WaitTimeout": ".errors",
    "BudgetExceeded": ".errors",
    "LedgerError": ".errors",
    "ImageRefused": ".errors",
    "SeqnbWarning": ".errors",
    "DuplicateSubmitWarning": ".client.core",
}
"""Each public name and the module that defines it."""

_RENAMED: dict[str, tuple[str, str, str]] = {
    "Timeout": ("seqnb.errors", "WaitTimeout", "seqnb.WaitTimeout"),
    "UnknownModelError": ("seqnb.errors", "UnknownModelError", "seqnb.NotFound"),
    "ModelNotFound": ("seqnb.errors", "ModelNotFound", "seqnb.NotFound"),
    "RequestRefused": ("seqnb.errors", "Refused", "seqnb.Refused"),
    "InputRejected": ("seqnb.errors", "InputRejected", "seqnb.Refused"),
    "PermissionDenied": ("seqnb.errors", "PermissionDenied", "seqnb.Refused"),
    "ConnectError": ("seqnb.errors", "ConnectError", "seqnb.TransportError"),
    "SweepInvalid": ("seqnb.errors", "SweepInvalid", "seqnb.RequestInvalid"),
    "Unsendable": ("seqnb.errors", "Unsendable", "seqnb.errors.Unsendable"),
    "BalanceUnchecked": ("seqnb.client.money", "BalanceUnchecked", "seqnb.SeqnbWarning"),
    "CatalogWarning": ("seqnb.api.catalog.entry", "CatalogWarning", "seqnb.SeqnbWarning"),
    "SchemaDriftWarning": ("seqnb.api.catalog.drift", "SchemaDriftWarning", "seqnb.SeqnbWarning"),
    "Report": ("seqnb.model.validation", "Report", "client.validate(request) (it returns one)"),
    "Problem": ("seqnb.model.validation", "Problem", "client.validate(request).problems"),
    "Fix": ("seqnb.model.validation", "Fix", "client.validate(request).problems[i].fix"),
    "validate_payload": ("seqnb.model.validation", "validate_payload", "client.validate(request)"),
    "find_counts": ("seqnb.model.prompt_count", "find_counts", "client.validate(request)"),
    "plan_sweep": ("seqnb.model.sweep", "plan_sweep", "client.plan(...)"),
    "price_for": ("seqnb.model.pricing", "price_for", "client.price(model)"),
    "get_model": ("seqnb.model.spec", "get_model", "seqnb.models() or Request(model, ...)"),
    "ModelSpec": ("seqnb.model.spec", "ModelSpec", "seqnb.models()"),
    "FieldSpec": ("seqnb.model.spec", "FieldSpec", "seqnb.models()[i].fields"),
    "register": ("seqnb.model.spec", "register", "a model file (docs/DESIGN.md, 'Adding a model')"),
    "size_dimensions": ("seqnb.model.spec", "size_dimensions", "seqnb.model.spec.size_dimensions"),
    "PollPolicy": ("seqnb.runs.pacing", "PollPolicy", "seqnb.runs.pacing.PollPolicy"),
    "RetryPolicy": ("seqnb.api.transport", "RetryPolicy", "seqnb.api.transport.RetryPolicy"),
    "RunMarks": ("seqnb.ledger.marks", "RunMarks", "run.marks"),
    "RunStatus": ("seqnb.api.protocol", "RunStatus", "run.status (a str)"),
    "Secret": ("seqnb.api.auth", "Secret", "a plain str token"),
    "Backend": ("seqnb.api.backend", "Backend", "client.backend"),
    "consistency": ("seqnb.images.scoring", "consistency", "gallery.consistency(run)"),
    "reference_similarity": ("seqnb.images.scoring", "reference_similarity", "gallery.reference_similarity(run)"),
}
"""Names that left the surface: old name -> (module, its name there, what to write instead)."""

if TYPE_CHECKING:  # what type checkers and editors see; the same names as _EXPORTS (tested)
    from .api.account import Balance as Balance
    from .client.core import AsyncClient as AsyncClient
    from .client.core import AsyncRun as AsyncRun
    from .client.core import DuplicateSubmitWarning as DuplicateSubmitWarning
    from .client.sweep import Sweep as Sweep
    from .client.sync import Client as Client
    from .client.sync import Run as Run
    from .errors import APIError as APIError
    from .errors import AuthError as AuthError
    from .errors import BudgetExceeded as BudgetExceeded
    from .errors import ImageRefused as ImageRefused
    from .errors import InsufficientBalance as InsufficientBalance
    from .errors import LedgerError as LedgerError
    from .errors import NotFound as NotFound
    from .errors import RateLimited as RateLimited
    from .errors import Refused as Refused
    from .errors import RequestInvalid as RequestInvalid
    from .errors import SeqnbError as SeqnbError
    from .errors import SeqnbWarning as SeqnbWarning
    from .errors import ServerError as ServerError
    from .errors import SettingInvalid as SettingInvalid
    from .errors import TransportError as TransportError
    from .errors import WaitTimeout as WaitTimeout
    from .images.cache import ImageCache as ImageCache
    from .images.gallery import Gallery as Gallery
    from .ledger.facade import Ledger as Ledger
    from .model.pricing import Cost as Cost
    from .model.pricing import Price as Price
    from .model.request import Request as Request
    from .model.spec import models as models
    from .model.sweep import SweepPlan as SweepPlan
    from .runs.run import RunEvent as RunEvent
    from .session import compare_grid as compare_grid
    from .session import connect as connect
    from .session import contact_sheet as contact_sheet
    from .ui.duel_view import duel as duel
    from .ui.matrix_view import matrix as matrix
    from .ui.studio import Studio as Studio

__all__ = sorted([*_EXPORTS, "__version__"])

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _RENAMED)
"""Public names that load on first use (PEP 562); old names warn and still work."""
