"""Run the emulator: in a background thread on a free loopback port, or in the foreground for curl."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import uvicorn

from .app import create_app
from .config import EmulatorConfig
from .faults import Faults, Route
from .queue import QueueConfig
from .state import Counters, EmulatorState

__all__ = ["EmulatorServer", "ThreadedApp", "config_from", "embedded", "serve"]


class PromptServer(uvicorn.Server):
    """uvicorn's server, woken at once when told to stop.

    uvicorn looks at ``should_exit`` every 0.1 s and pauses 0.1 s more in its shutdown, so every
    stop cost ~0.2 s: a minute of a test suite that starts hundreds of emulators. This one waits on
    an event (the date header is still renewed every second), asks open connections to finish and
    checks in 5 ms steps, and gives in-flight requests ``grace`` seconds before they are cancelled.
    """

    def __init__(self, config: uvicorn.Config, grace: float = 5.0) -> None:
        super().__init__(config)
        self.grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # on_tick renews the date header when counter % 10 == 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    def stop_soon(self) -> None:
        """From any thread: stop serving now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.grace
        while (self.server_state.connections or self.server_state.tasks) and loop.time() < give_up:
            await asyncio.sleep(0.005)
        for task in list(self.server_state.tasks):
            task.cancel()
        for server in self.servers:  # from 3.12 this waits for the connections too: bounded as well
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)


class ThreadedApp:
    """Any ASGI app served by uvicorn in a daemon thread on its own socket (bound on ``start``); a context manager.

    The emulator runs on it, and so can a test's own server (``seqnb.testing.serving(app)``).
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "seqnb-asgi") -> None:
        self.app = app
        self.host = host
        self.name = name
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._server: PromptServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None, "not started"
        return int(self._sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
        # without it every answer waits ~40 ms for a delayed ACK.
        self._sock = sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(2048)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30, backlog=2048
        )
        self._server = server = PromptServer(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop_soon()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._sock = self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorServer(ThreadedApp):
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
        config = config or config_from(**overrides)
        if host is not None and host != config.host:
            config = dataclasses.replace(config, host=host)
        self.config = config
        self.state = EmulatorState(self.config, clock=clock)
        super().__init__(create_app(state=self.state), config.host, port, name="seqnb-emulator")

    @property
    def token(self) -> str:
        """A token this emulator accepts (it is no RunComfy token)."""
        return self.config.token or "any-token"

    @property
    def control_token(self) -> str:
        """The Bearer token of the control routes and ``POST /files`` (``EmulatorConfig.control_token``)."""
        return self.config.control_token

    @property
    def counters(self) -> Counters:
        return self.state.counters

    def set_faults(self, faults: Faults | None = None, *, route: Route | None = None, **probabilities: Any) -> None:
        """Switch fault injection on or off while serving, for every call or one route."""
        self.state.set_faults(faults or Faults(**probabilities), route)

    def __repr__(self) -> str:
        where = self.base_url if self._thread is not None else "not started"
        return f"<EmulatorServer {where}>"


def config_from(**options: Any) -> EmulatorConfig:
    """An EmulatorConfig from flat keyword arguments: its own fields, each queue and fault setting by its field's
    name, or ``faults`` whole (a Faults, or a dict of its fields).

    Without ``token`` a random one is made, so that a test proves the client sends it;
    ``token=None`` accepts any Bearer token; ``controls=True`` serves the ``/_emulator/*`` routes
    beyond loopback too (with the token).
    """
    options.setdefault("token", "emu-" + secrets.token_urlsafe(16))
    queue = {k: options.pop(k) for k in list(options) if k in QueueConfig.__dataclass_fields__}
    settings = {k: options.pop(k) for k in list(options) if k in Faults.__dataclass_fields__}
    faults = options.pop("faults", None) or Faults(**settings)
    if isinstance(faults, dict):
        faults = Faults(**faults)
    return EmulatorConfig(queue=QueueConfig(**queue), faults=faults, **options)


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
