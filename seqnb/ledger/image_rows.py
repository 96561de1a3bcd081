"""What the gallery learned of a run's images, into the ledger: kept and retried, never lost to an outage.

A run's image rows start with its URLs, written with its completed row (``seqnb.ledger.writes``).
When the gallery has fetched them, each row gets its file, size, hash and state, and the run its
consistency score: one write per run (``ImageRows.record``), an upsert, so it never depends on the
URL rows being there first. A write that fails (the server gone, the disk full) is kept, retried on
every later change of any run, by every read and by ``Ledger.flush``, shown on the run
(``run.notes["ledger"]``) and by ``Ledger.health()``, as a run's own row is
(``seqnb.ledger.recorder``).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import LedgerError
from ..runs.run import RunCore
from .stores.base import Store

__all__ = ["IMAGE_FIELDS", "UNSET", "ImageRows", "Score"]

log = logging.getLogger("seqnb.ledger")

IMAGE_FIELDS = ("url", "path", "width", "height", "bytes", "sha256", "state")
"""What an image row says, beside its run and index."""

# A field not given (None) keeps what the row had: a frame that failed again keeps the hash of what it once was.
_UPSERT = (
    f"INSERT INTO images (run_id, idx, {', '.join(IMAGE_FIELDS)}) VALUES (?, ?, {', '.join('?' * len(IMAGE_FIELDS))}) "
    "ON CONFLICT(run_id, idx) DO UPDATE SET "
    + ", ".join(f"{f}=COALESCE(excluded.{f}, images.{f})" for f in IMAGE_FIELDS)
)


class Unset(enum.Enum):
    """No consistency score given (``None`` is one: the series could not be scored)."""

    UNSET = "unset"


UNSET = Unset.UNSET
_NOTE = "images NOT YET IN THE LEDGER"
Score = float | None | Literal[Unset.UNSET]


@dataclass
class _Pending:
    """One run's image facts not yet in the ledger: its rows by index, and its consistency score if it has one."""

    run: RunCore
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    consistency: Score = UNSET


class ImageRows:
    """The image rows of every run this ledger was told about: written at once, or kept and retried until they are."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.waiting: dict[str, _Pending] = {}
        """Runs whose image facts are not written yet (kept after a failed write, retried)."""
        self.last_error: LedgerError | None = None
        self._lock = threading.RLock()

    def record(self, run: RunCore, images: Mapping[int, Mapping[str, Any]], consistency: Score = UNSET) -> None:
        """Write a run's image rows (index -> fields of ``IMAGE_FIELDS``) and its consistency score; never raises for
        the ledger: a failed write is kept, retried and shown. ``ValueError`` for an unknown field."""
        for fields in images.values():
            unknown = set(fields) - set(IMAGE_FIELDS)
            if unknown:
                raise ValueError(f"unknown image fields {sorted(unknown)}; use {sorted(IMAGE_FIELDS)}")
        with self._lock:
            pending = self.waiting.setdefault(run.id, _Pending(run))
            pending.run = run
            for idx, fields in images.items():
                pending.rows[int(idx)] = {**pending.rows.get(int(idx), {}), **fields}
            if consistency is not UNSET:
                pending.consistency = consistency
        self.flush()

    def note(self, run_id: str) -> str:
        """What the run's note says while its image rows wait ('' when none do)."""
        if run_id not in self.waiting:
            return ""
        return f"{_NOTE} ({self.last_error}); seqnb retries on every change"

    def flush(self, raise_errors: bool = False) -> None:
        """Write every waiting run's image rows in one transaction; ``raise_errors``: raise the ``LedgerError`` if it fails."""
        if not self.waiting:
            return
        with self._lock:
            pending = list(self.waiting.values())
            if not pending:
                return
            try:
                self._write(pending)
            except LedgerError as error:
                if self.last_error is None or str(error) != str(self.last_error):
                    log.error("%s (seqnb keeps the image rows and retries on the next change)", error)
                self.last_error = error
                for one in pending:  # a note of the run's own row, not yet written either, stays: it says more
                    if one.run.notes.get("ledger", _NOTE).startswith(_NOTE):
                        one.run.say("ledger", self.note(one.run.id))
                if raise_errors:
                    raise
                return
            self.last_error = None
            for one in pending:
                if self.waiting.get(one.run.id) is one:
                    del self.waiting[one.run.id]
                if one.run.notes.get("ledger", "").startswith(_NOTE):
                    one.run.say("ledger", "")

    def _write(self, pending: list[_Pending]) -> None:
        what = f"record the images of run {pending[0].run.id}" if len(pending) == 1 else "record images"
        with self.store.guard(what), self.store.transaction():
            for one in pending:
                if self.store.execute("SELECT 1 FROM runs WHERE id=?", (one.run.id,)).fetchone() is None:
                    log.warning("images of run %s not recorded: the ledger has no such run", one.run.id)
                    continue
                urls = one.run.images
                rows = [
                    (one.run.id, idx, *[fields.get(f, urls[idx] if f == "url" and idx < len(urls) else None)
                                        for f in IMAGE_FIELDS])
                    for idx, fields in sorted(one.rows.items())
                ]  # fmt: skip
                self.store.executemany(_UPSERT, rows)
                if one.consistency is not UNSET:
                    self.store.execute("UPDATE runs SET consistency=? WHERE id=?", (one.consistency, one.run.id))
