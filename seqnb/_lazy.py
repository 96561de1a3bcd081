"""Public names loaded on first use (PEP 562), and old names that still work for one release, with a warning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated", "lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], renamed: Mapping[str, tuple[str, str, str]] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names live in the modules ``exports`` names.

    ``renamed``: old name -> (absolute module, new name, what to write instead); such a name warns (``DeprecationWarning``)
    and gives the new one, and is not listed by ``dir()``.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            return deprecated(package, name, renamed or {})
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # the next access is a plain lookup
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", exports))

    return __getattr__, __dir__


def deprecated(package: str, name: str, renamed: Mapping[str, tuple[str, str, str]]) -> Any:
    """The value an old name of ``package`` stands for now, with a ``DeprecationWarning`` naming what to use instead."""
    entry = renamed.get(name)
    if entry is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    module, new, instead = entry
    warnings.warn(
        f"{package}.{name} is deprecated and goes in the next release: use {instead}", DeprecationWarning, stacklevel=3
    )
    return getattr(importlib.import_module(module), new)
