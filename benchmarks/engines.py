"""Client CPU per API call under concurrency: seqnb's transport against the HTTP clients it could use.

    python benchmarks/engines.py [--calls 3000] [--in-flight 64]

One status call, again and again, ``--in-flight`` at a time, against the emulator in its own
process (so its CPU is not the client's). For each client: CPU microseconds per call in this
process, and calls per second; the ratio is against bare aiohttp (a session, a request, the body
read and parsed), the floor any client over aiohttp pays. seqnb's ``Transport`` adds its rules
(the token on the API origin, the answer cap, the deadline, the error map, the 429 gate);
httpx's interface over the same pool (``httpx-aiohttp``) and httpx's own transport are what the
choice of engine was measured against (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from _emulator import start as start_emulator
from httpx_aiohttp import HttpxAiohttpClient

from seqnb.api.auth import Secret
from seqnb.api.transport import Transport

MODEL = "bytedance/seedream-4-0/sequential"
HEADERS = {"Authorization": "Bearer bench", "User-Agent": "seqnb", "Accept": "application/json"}


async def measure(calls: int, in_flight: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(CPU microseconds per call, calls per second) over ``calls`` calls, ``in_flight`` at a time, after a warm-up."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one() for _ in range(min(calls, 200))))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    return (time.process_time() - cpu) / calls * 1e6, calls / (time.perf_counter() - wall)


async def bench(url: str, calls: int, in_flight: int) -> None:
    async with aiohttp.ClientSession() as setup:
        body = {"text": "Generate 2 images of a fox", "sequential_image_generation_options": 2, "seed": 1}
        async with setup.post(f"{url}/v1/models/{MODEL}", json=body, headers=HEADERS) as answer:
            path = f"/requests/{(await answer.json())['request_id']}/status"
    results: dict[str, tuple[float, float]] = {}

    connector = aiohttp.TCPConnector(limit=in_flight, keepalive_timeout=4.0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def bare() -> None:
            async with session.get(url + "/v1" + path, headers=HEADERS, allow_redirects=False) as answer:
                json.loads(await answer.read())

        results["aiohttp, bare"] = await measure(calls, in_flight, bare)

    transport = Transport(url + "/v1", Secret("bench"), max_concurrency=in_flight)
    results["seqnb Transport"] = await measure(calls, in_flight, lambda: transport.call("GET", path))
    await transport.aclose()

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    for name, client in (
        ("httpx over httpx-aiohttp", HttpxAiohttpClient(base_url=url + "/v1", headers=HEADERS, limits=limits)),
        ("httpx, its own transport", httpx.AsyncClient(base_url=url + "/v1", headers=HEADERS, limits=limits)),
    ):
        async with client:

            async def through_httpx(http: httpx.AsyncClient = client) -> None:
                (await http.get(path)).json()

            results[name] = await measure(calls // 4 if "own" in name else calls, in_flight, through_httpx)

    floor = results["aiohttp, bare"][0]
    print(f"{calls} status calls, {in_flight} in flight, the emulator in its own process")
    for name, (cpu, rate) in results.items():
        print(f"{name:<28} {cpu:7.0f} us CPU per call  ({cpu / floor:4.2f}x bare aiohttp)  {rate:6.0f} calls/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    proc, url = start_emulator("--workers", "8")
    try:
        asyncio.run(bench(url, args.calls, args.in_flight))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
