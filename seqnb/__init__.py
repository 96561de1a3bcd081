"""seqnb: prompt sessions with Seedream 4.0/4.5 sequential models on RunComfy's Model API, from Jupyter.

The public names load on first use (PEP 562), so ``import seqnb`` and ``seqnb --help`` stay
fast: the widgets, pandas and the HTTP client come in only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "APIError": ".errors",
    "AsyncClient": ".client",
    "AsyncRun": ".runs",
    "AuthError": ".errors",
    "Backend": ".client",
    "BudgetExceeded": ".errors",
    "Client": ".client",
    "compare_grid": ".gallery",
    "connect": ".session",
    "ConnectError": ".errors",
    "consistency": ".consistency",
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
    "PollPolicy": ".poller",
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
    "Sweep": ".client",
    "SweepInvalid": ".errors",
    "SweepPlan": ".sweep",
    "Timeout": ".errors",
    "TransportError": ".errors",
    "UnknownModelError": ".errors",
    "validate_payload": ".validation",
}
"""Each public name and the module that defines it."""

if TYPE_CHECKING:
    from .auth import Secret
    from .client import AsyncClient, Backend, Client, DuplicateSubmitWarning, Sweep
    from .consistency import consistency
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
        RateLimited,
        RequestInvalid,
        SeqnbError,
        ServerError,
        SettingInvalid,
        SweepInvalid,
        Timeout,
        TransportError,
        UnknownModelError,
    )
    from .gallery import Gallery, compare_grid, contact_sheet
    from .image_cache import ImageCache
    from .ledger import Ledger
    from .poller import PollPolicy
    from .pricing import Cost, Price, price_for
    from .prompt_count import find_counts
    from .request import Request
    from .runs import AsyncRun, Run, RunEvent, RunStatus
    from .session import connect
    from .spec import FieldSpec, ModelSpec, get_model, models, register, size_dimensions
    from .sweep import SweepPlan, plan_sweep
    from .transport import RetryPolicy
    from .ui import Studio
    from .validation import Fix, Problem, Report, validate_payload


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seqnb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "APIError",
    "AsyncClient",
    "AsyncRun",
    "AuthError",
    "Backend",
    "BudgetExceeded",
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
    "PollPolicy",
    "Price",
    "Problem",
    "RateLimited",
    "Report",
    "Request",
    "RequestInvalid",
    "RetryPolicy",
    "Run",
    "RunEvent",
    "RunStatus",
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
