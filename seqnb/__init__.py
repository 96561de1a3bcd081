"""seqnb: prompt sessions with Seedream 4.0/4.5 sequential models on RunComfy's Model API, from Jupyter."""

from __future__ import annotations

from .errors import (
    APIError,
    AuthError,
    BudgetExceeded,
    ConnectError,
    InputRejected,
    InsufficientBalance,
    ModelNotFound,
    NotFound,
    RateLimited,
    RequestInvalid,
    SeqnbError,
    ServerError,
    Timeout,
    TransportError,
)
from .pricing import Cost, Price, price_for
from .prompt_count import find_counts
from .request import Request
from .spec import FieldSpec, ModelSpec, UnknownModelError, get_model, models, register, size_dimensions
from .validation import Fix, Problem, Report, validate_payload

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AuthError",
    "BudgetExceeded",
    "ConnectError",
    "Cost",
    "FieldSpec",
    "Fix",
    "InputRejected",
    "InsufficientBalance",
    "ModelNotFound",
    "ModelSpec",
    "NotFound",
    "Price",
    "Problem",
    "RateLimited",
    "Report",
    "Request",
    "RequestInvalid",
    "SeqnbError",
    "ServerError",
    "Timeout",
    "TransportError",
    "UnknownModelError",
    "__version__",
    "find_counts",
    "get_model",
    "models",
    "price_for",
    "register",
    "size_dimensions",
    "validate_payload",
]
