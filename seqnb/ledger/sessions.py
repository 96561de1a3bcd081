"""Sessions: each client attached to a ledger, in one process on one machine, alive while it beats.

A session is a row in ``sessions``: a random id, user, host, pid, kernel, the ``machine`` its pid
means something on (``machine_id``), and a heartbeat the session renews itself (``beats``, a counter,
and ``heartbeat_at``, every ``beat_seconds``). It is gone when it ended, or when:

- it runs on this machine (same ``machine_id``, never judged by the host name, which two machines
  may share): its process is dead (for a pid of this very process: no session of it is open here);
- it runs elsewhere, on PostgreSQL: its heartbeat is older than three of its beats by the server's
  own clock (``now()`` there, for both the beat and the judgement);
- it runs elsewhere, on SQLite, which has no clock but each writer's: this process has watched its
  heartbeat stay unchanged for three of its beats, by this process's own monotonic clock. No two
  clocks are ever compared, so a skewed clock on either side cannot make a live session look gone.

Runs whose session is gone may be claimed by another (``seqnb.ledger.resume``). This process's
sessions on a ledger are its recorders (``seqnb.ledger.recorder``), kept beating by one thread per
ledger and ended at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import getpass
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LedgerError, SettingInvalid
from .stores.base import Store

if TYPE_CHECKING:
    from ..runs.run import RunCore

__all__ = ["HEARTBEAT_SECONDS", "MISSED_BEATS", "SessionInfo", "SessionKeeper", "machine_id", "pid_alive", "user_here"]

log = logging.getLogger("seqnb.ledger")

HEARTBEAT_SECONDS = 10.0
"""How often a session says it is alive; one silent for ``MISSED_BEATS`` of its beats is taken as gone."""
MISSED_BEATS = 3


@dataclass(frozen=True)
class SessionInfo:
    """Who and where a session runs: user, host, process, the machine its pid means something on, the kernel."""

    id: str
    user: str
    host: str
    pid: int
    kernel: str | None
    machine: str = ""

    @classmethod
    def here(cls) -> SessionInfo:
        """This process, its user as ``user_here`` says; a random id (128 bits: two sessions never share one)."""
        kernel = os.environ.get("JPY_SESSION_NAME") or None
        return cls("se-" + uuid.uuid4().hex, user_here(), socket.gethostname(), os.getpid(), kernel, machine_id())


@functools.cache
def machine_id() -> str:
    """Where a pid names one process: on Linux this boot of the kernel and this pid namespace (two containers on one
    host, or a machine rebooted since, differ; ``/etc/machine-id`` would not), else a random id kept in the cache
    folder, with the host name. Never the host name alone: two machines may share one."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        where = f"linux {boot} {os.readlink('/proc/self/ns/pid')}"
    except OSError:
        where = f"{_kept_random_id()} {socket.gethostname()}"
    return hashlib.sha256(where.encode()).hexdigest()[:20]


def _kept_random_id() -> str:
    """A random id kept in ``~/.cache/seqnb/machine-id`` (made once); this process's own if it cannot be kept."""
    path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqnb" / "machine-id"
    try:
        kept = path.read_text().strip()
        if kept:
            return kept
    except OSError:
        pass
    made = uuid.uuid4().hex
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(made)
    except OSError:  # not kept: other processes here are judged by their heartbeat, never by a pid
        pass
    return made


def user_here() -> str:
    """This process's user: ``$SEQNB_USER``, else JupyterHub's user, else the login name."""
    mine = os.environ.get("SEQNB_USER", "").strip()
    if "@" in mine or not mine.isprintable():
        raise SettingInvalid(
            f"SEQNB_USER: {mine!r} cannot name a user: no '@' (it joins user and host, as in by='alice@hub-3') "
            "and no control characters; write e.g. alice"
        )
    user = mine or os.environ.get("JUPYTERHUB_USER")
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


class Recording(Protocol):
    """A session's recorder as the keeper and the ledger's reads see it (``seqnb.ledger.recorder.Recorder``)."""

    session: SessionInfo
    ended: bool
    unsaved: dict[str, RunCore]
    last_error: LedgerError | None

    def end(self) -> None: ...
    def flush(self, raise_errors: bool = False) -> None: ...
    def annotate(self, run_id: str, note: str) -> bool: ...


class SessionKeeper:
    """This process's sessions on one ledger: opens and ends them, keeps them beating, tells which are live."""

    def __init__(self, store: Store, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.store = store
        self.heartbeat = heartbeat
        self.recorders: list[Recording] = []
        """One per client attached here (``Ledger.attach``), each a session; ``Recorder.end`` removes it."""
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self._seen: dict[str, tuple[tuple[Any, Any], float, bool]] = {}
        """SQLite: each other machine's session's heartbeat as this process last saw it, since when (monotonic), and
        whether it was ever seen to change."""
        self._seen_lock = threading.Lock()
        self.unsure: dict[str, float] = {}
        """SQLite: sessions of other machines taken for live only because this process has not watched them long
        enough (their heartbeat never seen to change yet): the seconds it still has to watch each."""
        _OPEN.add(self)

    def open(self) -> SessionInfo:
        """Register a new session (one client attached here) and keep its heartbeat going."""
        info = SessionInfo.here()
        with self.store.guard("register a session"), self.store.transaction():
            now = self.store.now()
            self.store.execute(
                "INSERT INTO sessions (id, username, host, pid, kernel, started_at, heartbeat_at, machine, beats, "
                "beat_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (info.id, info.user, info.host, info.pid, info.kernel, now, now, info.machine, self.heartbeat),
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
            with self.store.guard("beat"):
                self.store.execute(
                    f"UPDATE sessions SET heartbeat_at=?, beats=beats+1 WHERE id IN ({', '.join('?' * len(ids))})",
                    (self.store.now(), *ids),
                )
            if not self.store.shared_clock:
                self.live()  # watch the other sessions' heartbeats as time goes by, ready for a resume
        except LedgerError as exc:  # a missed beat only makes this session look older; the next one may pass
            log.debug("ledger heartbeat failed: %s", exc)

    def live(self) -> set[str]:
        """The sessions that are still alive: not ended, and on this machine with a live process or else beating
        (see the module's docstring for how each case is judged)."""
        here = machine_id()
        with self.store.guard("read sessions"):
            now = self.store.now() if self.store.shared_clock else None
            rows = self.store.execute(
                "SELECT id, machine, pid, heartbeat_at, beats, beat_seconds FROM sessions WHERE ended_at IS NULL"
            ).fetchall()
        watched_at = time.monotonic()
        live: set[str] = set()
        unsure: dict[str, float] = {}
        with self._seen_lock:
            for session, machine, pid, beat, beats, every in rows:
                window = MISSED_BEATS * float(every or self.heartbeat)
                if machine == here and pid is not None:
                    alive = _process_alive(session, int(pid))
                elif now is not None:  # one clock, the server's, for the beat and for now
                    alive = beat is not None and float(beat) >= now - window
                else:  # no shared clock: the heartbeat must change before this process's own clock says it is late
                    alive = self._watched_beating(session, (beats, beat), window, watched_at, unsure)
                if alive:
                    live.add(session)
            for gone in set(self._seen) - {row[0] for row in rows}:
                del self._seen[gone]
            self.unsure = unsure
        return live

    def _watched_beating(
        self, session: str, renewal: tuple[Any, Any], window: float, now: float, unsure: dict[str, float]
    ) -> bool:
        """Whether this process has seen ``session``'s heartbeat change within ``window`` seconds of its own clock
        (``now``, monotonic); one never seen to change yet, but not watched that long, goes into ``unsure``."""
        seen = self._seen.get(session)
        if seen is None or seen[0] != renewal:
            self._seen[session] = seen = (renewal, now, seen is not None)
        alive = now - seen[1] < window
        if alive and not seen[2]:
            unsure[session] = window - (now - seen[1])
        return alive


def _process_alive(session: str, pid: int) -> bool:
    """Whether a session of this machine runs: its process lives (for this very process: the session is open here)."""
    if pid == os.getpid():
        return any(r.session.id == session and not r.ended for keeper in list(_OPEN) for r in keeper.recorders)
    return pid_alive(pid)


@atexit.register
def _end_sessions_at_exit() -> None:
    for keeper in list(_OPEN):
        for recorder in list(keeper.recorders):
            with contextlib.suppress(Exception):
                recorder.end()


_OPEN: weakref.WeakSet[SessionKeeper] = weakref.WeakSet()
