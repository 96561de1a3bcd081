"""seqnb: prompt sessions with Seedream 4.0/4.5 sequential models on RunComfy's Model API, from Jupyter."""

from __future__ import annotations

import typing

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

__version__ = "0.1.0"

if typing.TYPE_CHECKING:
    from .ui import Studio


def __getattr__(name: str) -> object:
    # The widgets load only when asked for: scripts and the CLI do without ipywidgets.
    if name == "Studio":
        from .ui import Studio

        return Studio
    raise AttributeError(f"module 'seqnb' has no attribute {name!r}")


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
