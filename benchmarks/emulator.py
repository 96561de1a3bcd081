"""How fast the emulator answers status calls, and how fast it draws a series.

    python benchmarks/emulator.py [--seconds 5] [--connections 32]

1. Status calls per second: the emulator runs in its own process (one core); a raw asyncio
   HTTP/1.1 keep-alive client in this process (the other core) sends status calls for a queued
   job. Baseline, in the same run: a bare ASGI app under the same uvicorn answering a fixed JSON
   body; the ratio says what starlette routing, auth and the queue cost. Goal: >= 2,000/s.
2. Draw + encode a 3-image 2560x1440 series on one core (JPEG, what the emulator serves; PNG for
   comparison). Goal: < 1 s.
3. Validate a prompt that states its count 10,000 and 20,000 times (validate_payload, the
   client's check): the time ratio says how the work grows; linear is 2 (it was ~4: quadratic).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import textwrap
import time

import httpx
from _emulator import free_port
from _emulator import start as start_emulator

from seqnb.emulator.images import render
from seqnb.model.validation import validate_payload

BARE_APP = textwrap.dedent(
    """
    import sys, uvicorn
    BODY = b'{"request_id": "0123456789abcdef0123456789abcdef", "status": "in_queue", "queue_position": 0}'
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
        await send({"type": "http.response.body", "body": BODY})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


async def hammer(port: int, path: str, token: str, connections: int, seconds: float) -> int:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    length = re.compile(rb"content-length: *(\d+)", re.I)
    end = time.perf_counter() + seconds

    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer: {head[:80]!r}")
            match = length.search(head)
            assert match is not None
            await reader.readexactly(int(match.group(1)))
            done += 1
        writer.close()
        return done

    counts = await asyncio.gather(*(one() for _ in range(connections)))
    return sum(counts)


def status_rate(proc: subprocess.Popen[bytes], port: int, path: str, args: argparse.Namespace) -> float:
    """Status calls per second that the server in ``proc`` answers on ``path``."""
    try:
        asyncio.run(hammer(port, path, "bench", args.connections, 1.0))  # warm-up
        n = asyncio.run(hammer(port, path, "bench", args.connections, args.seconds))
        return float(n) / float(args.seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    proc, url = start_emulator("--queue-wait", "100000")
    submitted = httpx.post(
        f"{url}/v1/models/bytedance/seedream-4-0/sequential",
        json={"text": "Generate 3 images of a calm ocean"},
        headers={"Authorization": "Bearer bench"},
    ).json()
    emulator = status_rate(proc, int(url.rsplit(":", 1)[1]), f"/v1/requests/{submitted['request_id']}/status", args)
    port = free_port()
    bare_proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)], stderr=subprocess.DEVNULL)
    wait_up(port)
    bare = status_rate(bare_proc, port, "/", args)
    print(
        f"status calls/s   emulator {emulator:8.0f}   bare uvicorn baseline {bare:8.0f}   ratio {emulator / bare:.2f}   goal >= 2000/s: {'met' if emulator >= 2000 else 'NOT met'}"
    )

    model, prompt = "bytedance/seedream-4-0/sequential", "Generate 3 images of a beautiful sunset over a calm ocean."
    timings = {}
    for fmt in ("jpeg", "png"):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            sizes = [len(render(model, prompt, 42, 2560, 1440, i, 3, fmt)) for i in range(3)]
            best = min(best, time.perf_counter() - start)
        timings[fmt] = best
        print(f"3 x 2560x1440 series, draw + encode {fmt:<4}: {best:.3f} s  ({sum(sizes) / 1e6:.1f} MB)")
    print(
        f"jpeg / png time ratio {timings['jpeg'] / timings['png']:.2f}   goal jpeg < 1 s: {'met' if timings['jpeg'] < 1 else 'NOT met'}"
    )
    validation = {}
    for mentions in (10_000, 20_000):
        payload = {"prompt": "Generate 3 images of a cat. " * mentions, "sequential_image_generation_options": 4}
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            validate_payload("seedream-4.5", payload)
            best = min(best, time.perf_counter() - start)
        validation[mentions] = best
    growth = validation[20_000] / validation[10_000]
    print(
        f"validate a prompt stating its count 10k / 20k times: {validation[10_000]:.3f} s / {validation[20_000]:.3f} s"
        f"   ratio {growth:.2f}   goal linear (about 2): {'met' if growth < 2.6 else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "status_per_s": round(emulator),
                "bare_per_s": round(bare),
                "series_jpeg_s": round(timings["jpeg"], 3),
                "validate_20k_over_10k": round(growth, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
