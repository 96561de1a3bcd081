"""seqnb: prompt sessions with Seedream 4.0/4.5 sequential models on RunComfy's Model API, from Jupyter.

The public names load on first use (PEP 562), so ``import seqnb`` and ``seqnb --help`` stay
fast: the widgets, pandas and the HTTP client come in only when something needs them.

``_EXPORTS`` is the one list of the public surface: ``__all__`` and the lazy lookup are made from
it, and ``tests/test_public_api.py`` checks the type-checking imports below against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "APIError": ".errors",
    "AsyncClient": ".client.core",
    "AsyncRun": ".runs.run",
    "AuthError": ".errors",
    "Backend": ".api.backend",
    "Balance": ".api.account",
    "BalanceUnchecked": ".client.money",
    "BudgetExceeded": ".errors",
    "CatalogWarning": ".api.catalog.entry",
    "Client": ".client.sync",
    "compare_grid": ".images.gallery",
    "connect": ".session",
    "ConnectError": ".errors",
    "consistency": ".images.scoring",
    "contact_sheet": ".images.gallery",
    "Cost": ".model.pricing",
    "DuplicateSubmitWarning": ".client.core",
    "FieldSpec": ".model.spec",
    "find_counts": ".model.prompt_count",
    "Fix": ".model.validation",
    "Gallery": ".images.gallery",
    "get_model": ".model.spec",
    "ImageCache": ".images.cache",
    "ImageRefused": ".errors",
    "InputRejected": ".errors",
    "InsufficientBalance": ".errors",
    "Ledger": ".ledger.facade",
    "LedgerError": ".errors",
    "ModelNotFound": ".errors",
    "matrix": ".ui.matrix_view",
    "models": ".model.spec",
    "ModelSpec": ".model.spec",
    "NotFound": ".errors",
    "PermissionDenied": ".errors",
    "plan_sweep": ".model.sweep",
    "PollPolicy": ".runs.pacing",
    "Price": ".model.pricing",
    "price_for": ".model.pricing",
    "Problem": ".model.validation",
    "RateLimited": ".errors",
    "register": ".model.spec",
    "Report": ".model.validation",
    "Request": ".model.request",
    "RequestInvalid": ".errors",
    "RequestRefused": ".errors",
    "RetryPolicy": ".api.transport",
    "Run": ".client.run",
    "RunEvent": ".runs.run",
    "RunMarks": ".ledger.marks",
    "RunStatus": ".api.protocol",
    "SchemaDriftWarning": ".api.catalog.drift",
    "Secret": ".api.auth",
    "SeqnbError": ".errors",
    "ServerError": ".errors",
    "SettingInvalid": ".errors",
    "size_dimensions": ".model.spec",
    "Studio": ".ui.studio",
    "Sweep": ".client.sweeps",
    "SweepInvalid": ".errors",
    "SweepPlan": ".model.sweep",
    "Timeout": ".errors",
    "TransportError": ".errors",
    "UnknownModelError": ".errors",
    "Unsendable": ".errors",
    "validate_payload": ".model.validation",
}
"""Each public name and the module that defines it."""

if TYPE_CHECKING:  # what type checkers and editors see; the same names as _EXPORTS (tested)
    from .api.account import Balance as Balance
    from .api.auth import Secret as Secret
    from .api.backend import Backend as Backend
    from .api.catalog.drift import SchemaDriftWarning as SchemaDriftWarning
    from .api.catalog.entry import CatalogWarning as CatalogWarning
    from .api.protocol import RunStatus as RunStatus
    from .api.transport import RetryPolicy as RetryPolicy
    from .client.core import AsyncClient as AsyncClient
    from .client.core import DuplicateSubmitWarning as DuplicateSubmitWarning
    from .client.money import BalanceUnchecked as BalanceUnchecked
    from .client.run import Run as Run
    from .client.sweeps import Sweep as Sweep
    from .client.sync import Client as Client
    from .errors import APIError as APIError
    from .errors import AuthError as AuthError
    from .errors import BudgetExceeded as BudgetExceeded
    from .errors import ConnectError as ConnectError
    from .errors import ImageRefused as ImageRefused
    from .errors import InputRejected as InputRejected
    from .errors import InsufficientBalance as InsufficientBalance
    from .errors import LedgerError as LedgerError
    from .errors import ModelNotFound as ModelNotFound
    from .errors import NotFound as NotFound
    from .errors import PermissionDenied as PermissionDenied
    from .errors import RateLimited as RateLimited
    from .errors import RequestInvalid as RequestInvalid
    from .errors import RequestRefused as RequestRefused
    from .errors import SeqnbError as SeqnbError
    from .errors import ServerError as ServerError
    from .errors import SettingInvalid as SettingInvalid
    from .errors import SweepInvalid as SweepInvalid
    from .errors import Timeout as Timeout
    from .errors import TransportError as TransportError
    from .errors import UnknownModelError as UnknownModelError
    from .errors import Unsendable as Unsendable
    from .images.cache import ImageCache as ImageCache
    from .images.gallery import Gallery as Gallery
    from .images.gallery import compare_grid as compare_grid
    from .images.gallery import contact_sheet as contact_sheet
    from .images.scoring import consistency as consistency
    from .ledger.facade import Ledger as Ledger
    from .ledger.marks import RunMarks as RunMarks
    from .model.pricing import Cost as Cost
    from .model.pricing import Price as Price
    from .model.pricing import price_for as price_for
    from .model.prompt_count import find_counts as find_counts
    from .model.request import Request as Request
    from .model.spec import FieldSpec as FieldSpec
    from .model.spec import ModelSpec as ModelSpec
    from .model.spec import get_model as get_model
    from .model.spec import models as models
    from .model.spec import register as register
    from .model.spec import size_dimensions as size_dimensions
    from .model.sweep import SweepPlan as SweepPlan
    from .model.sweep import plan_sweep as plan_sweep
    from .model.validation import Fix as Fix
    from .model.validation import Problem as Problem
    from .model.validation import Report as Report
    from .model.validation import validate_payload as validate_payload
    from .runs.pacing import PollPolicy as PollPolicy
    from .runs.run import AsyncRun as AsyncRun
    from .runs.run import RunEvent as RunEvent
    from .session import connect as connect
    from .ui.matrix_view import matrix as matrix
    from .ui.studio import Studio as Studio

__all__ = sorted([*_EXPORTS, "__version__"])

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
