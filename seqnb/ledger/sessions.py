"""Sessions: each client attached to a ledger, in one process on one host, alive while it beats.

A session is a row in ``sessions`` (user, host, pid, kernel, a heartbeat on the database's clock).
It is gone when ended, when its process is dead (on this host), or when its heartbeat is stale
(three beats missed); runs whose session is gone may be claimed by another (``seqnb.ledger.resume``).
This process's sessions on a ledger are its recorders (``seqnb.ledger.recorder``), kept beating by
one thread per ledger and ended at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import logging
import os
import socket
import threading
import uuid
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import LedgerError
from .stores.base import Store

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["HEARTBEAT_SECONDS", "SessionInfo", "SessionKeeper", "pid_alive", "user_here"]

log = logging.getLogger("seqnb.ledger")

HEARTBEAT_SECONDS = 10.0
"""How often a session says it is alive; one silent for three beats is taken as gone."""


@dataclass(frozen=True)
class SessionInfo:
    """Who and where a session runs: user, host, process, and the notebook kernel when known."""

    id: str
    user: str
    host: str
    pid: int
    kernel: str | None

    @classmethod
    def here(cls) -> SessionInfo:
        """This process, its user as ``user_here`` says."""
        kernel = os.environ.get("JPY_SESSION_NAME") or None
        return cls("se-" + uuid.uuid4().hex[:12], user_here(), socket.gethostname(), os.getpid(), kernel)


def user_here() -> str:
    """This process's user: ``$SEQNB_USER``, else JupyterHub's user, else the login name."""
    user = os.environ.get("SEQNB_USER") or os.environ.get("JUPYTERHUB_USER")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = "unknown"
    return user


def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionKeeper:
    """This process's sessions on one ledger: opens and ends them, keeps them beating, tells which are live."""

    def __init__(self, store: Store, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.store = store
        self.heartbeat = heartbeat
        self.recorders: list[Recorder] = []
        """One per client attached here (``Ledger.attach``), each a session; ``Recorder.end`` removes it."""
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        _OPEN.add(self)

    def open(self) -> SessionInfo:
        """Register a new session (one client attached here) and keep its heartbeat going."""
        info = SessionInfo.here()
        with self.store.guard("register a session"), self.store.transaction():
            now = self.store.now()
            self.store.execute(
                "INSERT INTO sessions (id, username, host, pid, kernel, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (info.id, info.user, info.host, info.pid, info.kernel, now, now),
            )
        self._start_heartbeat()
        return info

    def end(self, session: str) -> None:
        """Mark a session ended (if the store fails, it is taken for gone once its heartbeat goes stale)."""
        with contextlib.suppress(LedgerError), self.store.guard("end a session"):
            self.store.execute(
                "UPDATE sessions SET ended_at=? WHERE id=? AND ended_at IS NULL", (self.store.now(), session)
            )

    def close(self) -> None:
        """End every session of this process here, and stop the heartbeat."""
        for recorder in list(self.recorders):
            recorder.end()
        self._beat_stop.set()

    def _start_heartbeat(self) -> None:
        if self._beat_thread is not None and self._beat_thread.is_alive():
            return
        self._beat_stop.clear()
        ref = weakref.ref(self)
        stop, interval = self._beat_stop, self.heartbeat

        def beat() -> None:  # holds the keeper only while beating, so an unused ledger can be collected
            while not stop.wait(interval):
                keeper = ref()
                if keeper is None:
                    return
                keeper._beat()
                del keeper

        self._beat_thread = threading.Thread(target=beat, name="seqnb-ledger-heartbeat", daemon=True)
        self._beat_thread.start()

    def _beat(self) -> None:
        ids = [r.session.id for r in self.recorders if not r.ended]
        if not ids:
            return
        try:
            self.store.execute(
                f"UPDATE sessions SET heartbeat_at=? WHERE id IN ({', '.join('?' * len(ids))})",
                (self.store.now(), *ids),
            )
        except self.store.errors as exc:  # a missed beat only makes this session look older; the next one may pass
            log.debug("ledger heartbeat failed: %s", exc)

    def live(self) -> set[str]:
        """The sessions that are still alive: not ended, and on this host with a live process or else beating."""
        here = socket.gethostname()
        with self.store.guard("read sessions"):
            stale = self.store.now() - 3 * self.heartbeat
            rows = self.store.execute(
                "SELECT id, host, pid, heartbeat_at FROM sessions WHERE ended_at IS NULL"
            ).fetchall()
        live = set()
        for session, host, pid, beat in rows:
            if host == here and pid is not None:
                alive = pid_alive(int(pid)) and (int(pid) != os.getpid() or beat >= stale or self._ours(session))
            else:
                alive = beat >= stale
            if alive:
                live.add(session)
        return live

    def _ours(self, session: str) -> bool:
        return any(r.session.id == session and not r.ended for r in self.recorders)


@atexit.register
def _end_sessions_at_exit() -> None:
    for keeper in list(_OPEN):
        for recorder in list(keeper.recorders):
            with contextlib.suppress(Exception):
                recorder.end()


_OPEN: weakref.WeakSet[SessionKeeper] = weakref.WeakSet()
