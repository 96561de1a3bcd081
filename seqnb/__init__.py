"""seqnb: prompt sessions with Seedream 4.0/4.5 sequential models on RunComfy's Model API, from Jupyter.

The public names load on first use (PEP 562), so ``import seqnb`` and ``seqnb --help`` stay
fast: the widgets, pandas and the HTTP client come in only when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "PermissionDenied": ".errors",
    "RequestRefused": ".errors",
    "Unsendable": ".errors",
    "Balance": ".account",
    "BalanceUnchecked": ".client_money",
    "CatalogWarning": ".catalog_entry",
    "SchemaDriftWarning": ".schema_drift",
    "APIError": ".errors",
    "AsyncClient": ".client",
    "AsyncRun": ".runs",
    "AuthError": ".errors",
    "Backend": ".backend",
    "BudgetExceeded": ".errors",
    "Client": ".sync_client",
    "compare_grid": ".gallery",
    "connect": ".session",
    "ConnectError": ".errors",
    "consistency": ".scoring",
    "contact_sheet": ".gallery",
    "Cost": ".pricing",
    "DuplicateSubmitWarning": ".client",
    "FieldSpec": ".spec",
    "find_counts": ".prompt_count",
    "Fix": ".validation",
    "Gallery": ".gallery",
    "get_model": ".spec",
    "ImageCache": ".image_cache",
    "ImageRefused": ".errors",
    "InputRejected": ".errors",
    "InsufficientBalance": ".errors",
    "Ledger": ".ledger",
    "LedgerError": ".errors",
    "ModelNotFound": ".errors",
    "models": ".spec",
    "ModelSpec": ".spec",
    "NotFound": ".errors",
    "plan_sweep": ".sweep",
    "PollPolicy": ".poll_pacing",
    "Price": ".pricing",
    "price_for": ".pricing",
    "Problem": ".validation",
    "RateLimited": ".errors",
    "register": ".spec",
    "Report": ".validation",
    "Request": ".request",
    "RequestInvalid": ".errors",
    "RetryPolicy": ".transport",
    "Run": ".runs",
    "RunEvent": ".runs",
    "RunStatus": ".runs",
    "Secret": ".auth",
    "SeqnbError": ".errors",
    "ServerError": ".errors",
    "SettingInvalid": ".errors",
    "size_dimensions": ".spec",
    "Studio": ".ui",
    "Sweep": ".client_sweeps",
    "SweepInvalid": ".errors",
    "SweepPlan": ".sweep",
    "Timeout": ".errors",
    "TransportError": ".errors",
    "UnknownModelError": ".errors",
    "validate_payload": ".validation",
}
"""Each public name and the module that defines it."""

if TYPE_CHECKING:
    from .account import Balance
    from .auth import Secret
    from .backend import Backend
    from .catalog_entry import CatalogWarning
    from .client import AsyncClient, DuplicateSubmitWarning
    from .client_money import BalanceUnchecked
    from .client_sweeps import Sweep
    from .errors import (
        APIError,
        AuthError,
        BudgetExceeded,
        ConnectError,
        ImageRefused,
        InputRejected,
        InsufficientBalance,
        LedgerError,
        ModelNotFound,
        NotFound,
        PermissionDenied,
        RateLimited,
        RequestInvalid,
        RequestRefused,
        SeqnbError,
        ServerError,
        SettingInvalid,
        SweepInvalid,
        Timeout,
        TransportError,
        UnknownModelError,
        Unsendable,
    )
    from .gallery import Gallery, compare_grid, contact_sheet
    from .image_cache import ImageCache
    from .ledger import Ledger
    from .poll_pacing import PollPolicy
    from .pricing import Cost, Price, price_for
    from .prompt_count import find_counts
    from .request import Request
    from .runs import AsyncRun, Run, RunEvent, RunStatus
    from .schema_drift import SchemaDriftWarning
    from .scoring import consistency
    from .session import connect
    from .spec import FieldSpec, ModelSpec, get_model, models, register, size_dimensions
    from .sweep import SweepPlan, plan_sweep
    from .sync_client import Client
    from .transport import RetryPolicy
    from .ui import Studio
    from .validation import Fix, Problem, Report, validate_payload


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncRun",
    "AuthError",
    "Backend",
    "Balance",
    "BalanceUnchecked",
    "BudgetExceeded",
    "CatalogWarning",
    "Client",
    "ConnectError",
    "Cost",
    "DuplicateSubmitWarning",
    "FieldSpec",
    "Fix",
    "Gallery",
    "ImageCache",
    "ImageRefused",
    "InputRejected",
    "InsufficientBalance",
    "Ledger",
    "LedgerError",
    "ModelNotFound",
    "ModelSpec",
    "NotFound",
    "PermissionDenied",
    "PollPolicy",
    "Price",
    "Problem",
    "RateLimited",
    "Report",
    "Request",
    "RequestInvalid",
    "RequestRefused",
    "RetryPolicy",
    "Run",
    "RunEvent",
    "RunStatus",
    "SchemaDriftWarning",
    "Secret",
    "SeqnbError",
    "ServerError",
    "SettingInvalid",
    "Studio",
    "Sweep",
    "SweepInvalid",
    "SweepPlan",
    "Timeout",
    "TransportError",
    "UnknownModelError",
    "Unsendable",
    "__version__",
    "compare_grid",
    "connect",
    "consistency",
    "contact_sheet",
    "find_counts",
    "get_model",
    "models",
    "plan_sweep",
    "price_for",
    "register",
    "size_dimensions",
    "validate_payload",
]
