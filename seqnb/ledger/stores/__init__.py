"""The stores a ledger can keep its rows in, and the factory that picks one for a path or a URL."""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import SettingInvalid
from .base import Store
from .postgres import PostgresStore
from .sqlite import SqliteStore

__all__ = ["PostgresStore", "SqliteStore", "Store", "open_store"]


def open_store(target: str | os.PathLike[str], where: str = "ledger") -> Store:
    """The store for a file path or a ``postgresql://`` (or ``postgres://``) URL."""
    scheme = target.split("://", 1)[0].lower() if isinstance(target, str) and "://" in target else None
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(str(target))
    if scheme is not None:
        raise SettingInvalid(
            f"{where}: {target!r} is not a ledger: a ledger is a file path or a postgresql:// URL, "
            "e.g. ./seqnb-ledger.sqlite or postgresql://user@host/seqnb"
        )
    return SqliteStore(Path(target).expanduser())
