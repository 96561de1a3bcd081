"""Which field a payload meant: another model's name for a role, a near miss, a field only another model has."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from .spec import ModelSpec, models

__all__ = ["misnamed_fields", "unknown_hint"]


def unknown_hint(spec: ModelSpec, key: str) -> str:
    """What an unknown field ``key`` may have meant, as ``"; ..."`` to end a message, or empty."""
    for other in models():
        f = other.field(key)
        if other is not spec and f and f.role and (mine := spec.role(f.role)):
            return f"; {spec.short_name} calls it {mine.wire!r}"
    close = difflib.get_close_matches(key, [f.wire for f in spec], n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    owners = [m.short_name for m in models() if m.field(key)]
    return f"; only {', '.join(owners)} accept(s) it" if owners else ""


def misnamed_fields(spec: ModelSpec, payload: Mapping[str, Any]) -> dict[str, str]:
    """This model's required wire name -> the key given instead, when the payload uses another model's name for
    its role (``prompt`` for seedream-4.0's ``text``): one problem that names both, which the service answers too."""
    out: dict[str, str] = {}
    for key in payload:
        if not isinstance(key, str) or spec.field(key) is not None:
            continue
        for other in models():
            f = other.field(key)
            mine = spec.role(f.role) if f is not None and f.role else None
            if mine is not None and mine.required and mine.wire not in payload:
                out.setdefault(mine.wire, key)
                break
    return out
