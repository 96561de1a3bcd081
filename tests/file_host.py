"""A loopback file host for image tests: each path serves a body with its status, type, declared length and delay."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Served:
    body: bytes
    kind: str = "image/png"
    status: int = 200
    length: int | None = None
    """The Content-Length to declare (None: the body's own)."""
    delay: float = 0.0
    """Seconds to wait before answering."""


class FileHost:
    """Serves ``routes`` on 127.0.0.1 and records each request's path (``hits``) and headers (``headers``).

    ``close()`` stops it fully: its socket closed too, so a late client (the emulator fetching a
    reference for an image it draws) is refused at once instead of waiting out its timeout on a
    host that still accepts connections but no longer answers.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Served] = {}
        self.hits: list[str] = []
        self.headers: list[dict[str, str]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits.append(self.path)
                host.headers.append({k.lower(): v for k, v in self.headers.items()})
                served = host.routes.get(self.path, Served(b"no", "text/plain", 404))
                time.sleep(served.delay)
                self.send_response(served.status)
                self.send_header("Content-Type", served.kind)
                self.send_header(
                    "Content-Length", str(served.length if served.length is not None else len(served.body))
                )
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.netloc = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.netloc}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
