"""The stores a ledger can keep its rows in, and the factory that picks one for a path or a URL."""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import SettingInvalid
from .base import Store
from .postgres import PostgresStore
from .sqlite import SqliteStore

__all__ = ["PostgresStore", "SqliteStore", "Store", "is_url", "open_store"]


def is_url(target: str | os.PathLike[str]) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in ("postgresql", "postgres")


def open_store(target: str | os.PathLike[str], where: str = "ledger") -> Store:
    """The store for a file path or a ``postgresql://`` URL."""
    if is_url(target):
        return PostgresStore(str(target))
    if isinstance(target, str) and "://" in target:
        raise SettingInvalid(
            f"{where}: {target!r} is not a ledger: a ledger is a file path or a postgresql:// URL, "
            "e.g. ./seqnb-ledger.sqlite or postgresql://user@host/seqnb"
        )
    return SqliteStore(Path(target).expanduser())
