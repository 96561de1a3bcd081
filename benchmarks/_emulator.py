"""Start ``seqnb emulator`` in its own process for a benchmark (so its CPU is not the client's)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """The emulator with ``--token bench`` and ``flags`` on a free loopback port, quiet; (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqnb.cli", "emulator", "--port", str(port), "--token", "bench", "--quiet", *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/")
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("the emulator did not start")
