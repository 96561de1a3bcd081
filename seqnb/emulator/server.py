"""Run the emulator: in a background thread on a free loopback port, or in the foreground for curl."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .config import EmulatorConfig, is_loopback
from .faults import Faults, Route
from .queue import QueueConfig
from .state import Counters, EmulatorState

__all__ = ["EmulatorServer", "embedded", "is_loopback", "serve"]


class EmulatorServer:
    """The emulator served by uvicorn in a daemon thread; a context manager.

    ``with EmulatorServer() as emu: emu.base_url, emu.token, emu.counters``; with
    ``clock=ManualClock()`` its jobs and URLs age only when the test advances that clock.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        config = config or _config_from(**overrides)
        if host is not None and host != config.host:
            config = dataclasses.replace(config, host=host)
        self.config = config
        self.state = EmulatorState(self.config, clock=clock)
        self.app = create_app(state=self.state)
        self.host = config.host
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def token(self) -> str:
        """A token this emulator accepts (it is no RunComfy token)."""
        return self.config.token or "any-token"

    @property
    def port(self) -> int:
        assert self._sock is not None, "not started"
        return int(self._sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def counters(self) -> Counters:
        return self.state.counters

    def set_faults(self, faults: Faults | None = None, *, route: Route | None = None, **probabilities: Any) -> None:
        """Switch fault injection on or off while serving, for every call or one route."""
        self.state.set_faults(faults or Faults(**probabilities), route)

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
        # without it every answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(2048)
        sock.setblocking(False)
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            backlog=2048,
        )
        server = uvicorn.Server(config)
        self._server = server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name="seqnb-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the seqnb emulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._thread = None
        self._server = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._sock is not None else "not started"
        return f"<EmulatorServer {where}>"


def _config_from(**overrides: Any) -> EmulatorConfig:
    """An EmulatorConfig from flat keyword arguments (queue and fault settings included).

    Without ``token`` a random one is made, so that a test proves the client sends it;
    ``token=None`` accepts any Bearer token; ``controls=True`` serves the ``/_emulator/*`` routes
    beyond loopback too (with the token).
    """
    overrides.setdefault("token", "emu-" + secrets.token_urlsafe(16))
    queue_keys = QueueConfig.__dataclass_fields__.keys()
    queue = {k: overrides.pop(k) for k in list(overrides) if k in queue_keys}
    faults = overrides.pop("faults", None)
    if isinstance(faults, dict):
        faults = Faults(**faults)
    return EmulatorConfig(queue=QueueConfig(**queue), faults=faults or Faults(), **overrides)


def serve(config: EmulatorConfig | None = None, **overrides: Any) -> EmulatorServer:
    """Start an emulator on a free loopback port; use as ``with serve(speed=20) as emu: ...``."""
    return EmulatorServer(config, **overrides).start()


_embedded: EmulatorServer | None = None
_embedded_lock = threading.Lock()

EMBEDDED_DEFAULTS: dict[str, Any] = {"workers": 8, "queue_wait": 0.4, "base_seconds": 0.4, "seconds_per_image": 0.5}


def embedded() -> EmulatorServer:
    """The process's shared emulator, started on first use; what ``seqnb.connect()`` uses without a token."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            _embedded = serve(**EMBEDDED_DEFAULTS)
        return _embedded
