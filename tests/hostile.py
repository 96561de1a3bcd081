"""A hostile stand-in for the service: a raw ASGI app on loopback that answers whatever a test scripts.

Only for answers the emulator cannot give (odd shapes, odd statuses). One server can be reused
across many examples: ``server.play(script)`` swaps what it answers and resets its counters.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from seqnb.emulator.server import ThreadedApp

ROUTES = ("submit", "status", "result", "cancel", "catalog", "balance")


@dataclass(frozen=True)
class Reply:
    """One answer: an HTTP status, a JSON body (or raw bytes) and headers."""

    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None


@dataclass
class Script:
    """The answers per route, in order; the last one repeats."""

    submit: list[Reply] = field(default_factory=list)
    status: list[Reply] = field(default_factory=list)
    result: list[Reply] = field(default_factory=list)
    cancel: list[Reply] = field(default_factory=list)
    catalog: list[Reply] = field(default_factory=lambda: [Reply(404, {"error_message": "no catalog scripted"})])
    """``GET /v1/models/...``: none by default (a client then checks with its built-in values)."""
    entries: dict[str, Any] = field(default_factory=dict)
    """Catalog entries by model id: ``GET /v1/models/{id}`` answers its own (before ``catalog``)."""
    balance: list[Reply] = field(default_factory=lambda: [Reply(404, {"error_message": "no balance scripted"})])
    """``GET /prod/v2/balance`` (give ``account_base_url=server.base_url``)."""


def accepted(request_id: str = "req-1") -> Reply:
    return Reply(200, {"request_id": request_id, "status_url": "x", "result_url": "y", "cancel_url": "z"})


class HostileServer(ThreadedApp):
    """Serves a ``Script`` over loopback HTTP, counting calls and remembering every submit's body; a context manager."""

    def __init__(self) -> None:
        super().__init__(self, name="hostile-server")
        self.script = Script()
        self.calls: Counter[str] = Counter()
        self.submits: list[tuple[dict[str, Any] | None, int]] = []
        """(submitted JSON body, status answered) for every POST to a model."""
        self.paths: list[str] = []
        self.queries: list[str] = []
        """The query string of every call, beside ``paths``."""
        self._lock = threading.Lock()

    def play(self, script: Script) -> None:
        with self._lock:
            self.script = script
            self.calls = Counter()
            self.submits = []
            self.paths = []
            self.queries = []

    def _route(self, method: str, path: str) -> str | None:
        if method == "POST" and path.startswith("/v1/models/"):
            return "submit"
        if method == "GET" and path.startswith("/v1/models"):
            return "catalog"
        if method == "GET" and path == "/prod/v2/balance":
            return "balance"
        if path.startswith("/v1/requests/"):
            tail = path.rsplit("/", 1)[-1]
            if method == "GET" and tail in ("status", "result"):
                return tail
            if method == "POST" and tail == "cancel":
                return "cancel"
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        route = self._route(scope["method"], scope["path"])
        with self._lock:
            self.paths.append(scope["path"])
            self.queries.append(scope.get("query_string", b"").decode("latin-1"))
            if route is None:
                reply = Reply(404, {"error_message": "no such route"})
            else:
                n = self.calls[route]
                self.calls[route] += 1
                replies: list[Reply] = getattr(self.script, route)
                reply = replies[min(n, len(replies) - 1)] if replies else Reply(500, {"error_message": "unscripted"})
                entry = self.script.entries.get(scope["path"].removeprefix("/v1/models/"))
                if route == "catalog" and entry is not None:
                    reply = Reply(200, entry)
                if route == "submit":
                    try:
                        sent = json.loads(body)
                    except ValueError:
                        sent = None
                    self.submits.append((sent if isinstance(sent, dict) else None, reply.status))
        data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
