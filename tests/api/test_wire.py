"""seqnb's HTTP/1.1 wire against servers that answer as real ones do and as broken ones do: raw TCP (and TLS)
on loopback, each server scripted byte by byte. Keep-alive is used and never trusted blindly; a failure
after the request left is never a "not sent"."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from seqnb import errors
from seqnb.api.auth import Secret
from seqnb.api.transport import RetryPolicy, Transport
from seqnb.api.wire import Wire

TOKEN = "tok-" + "w1res3cret" * 3
OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{"status":"ok"}\n'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (by its Content-Length); b"" when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


class Server:
    """A loopback TCP server running ``handler(reader, writer, n)`` for the n-th connection; keeps the requests."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer, self.connections)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    async def keep_answering(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes) -> None:
        while request := await read_request(reader):
            self.requests.append(request)
            writer.write(answer)
            await writer.drain()


def transport(url: str, **kw: Any) -> Transport:
    return Transport(url, Secret(TOKEN), retry=RetryPolicy(attempts=2, base=0.01, cap=0.02, submit_attempts=2), **kw)


def test_calls_reuse_one_connection_and_carry_the_token_and_the_body() -> None:
    async def go() -> None:
        server: Server

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await server.keep_answering(reader, writer, OK)

        async with Server(handler) as server:
            t = transport(server.url)
            for i in range(20):
                assert await t.call("GET", f"/requests/r{i}/status") == {"status": "ok"}
            assert await t.submit("m/x", {"prompt": "Generate 2 images of a fox", "seed": 3}) == {"status": "ok"}
            await t.aclose()
        assert server.connections == 1
        first, last = server.requests[0], server.requests[-1]
        assert first.startswith(b"GET /v1/requests/r0/status HTTP/1.1\r\n")
        assert f"\r\nAuthorization: Bearer {TOKEN}\r\n".encode() in first
        assert last.startswith(b"POST /v1/models/m/x HTTP/1.1\r\n")
        assert last.endswith(b'{"prompt":"Generate 2 images of a fox","seed":3}')

    asyncio.run(go())


def test_a_chunked_answer_arriving_a_byte_at_a_time_is_read_whole() -> None:
    body = b'{"request_id":"abc","status":"completed","images":["https://x/1.png"]}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7))
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"

    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            while await read_request(reader):
                for i in range(len(answer)):
                    writer.write(answer[i : i + 1])
                    await writer.drain()

        async with Server(handler) as server:
            t = transport(server.url)
            assert (await t.call("GET", "/requests/abc/result"))["images"] == ["https://x/1.png"]
            assert (await t.call("GET", "/requests/abc/result"))["status"] == "completed"
            await t.aclose()
            assert server.connections == 1

    asyncio.run(go())


def test_a_connection_the_server_closed_while_idle_is_never_used_again() -> None:
    """A keep-alive timeout on the server's side, a "Connection: close", or bytes sent unasked (a 408 before
    closing): the next call opens a new connection instead of losing its request on the old one."""

    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_request(reader)
            if n == 1:  # answers, then closes the idle connection a moment later
                writer.write(OK)
                await asyncio.sleep(0.05)
            elif n == 2:  # says it will close
                writer.write(OK.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1))
            elif n == 3:  # answers, then sends a 408 unasked, and keeps the connection open
                writer.write(OK)
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
                await asyncio.sleep(5)
            else:
                writer.write(OK)
                await read_request(reader)

        async with Server(handler) as server:
            t = transport(server.url)
            for _ in range(4):
                assert await t.call("GET", "/requests/r/status") == {"status": "ok"}
                await asyncio.sleep(0.2)
            await t.aclose()
            assert server.connections == 4

    asyncio.run(go())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b'{"status":', b"NOT HTTP AT ALL\r\n\r\n", b"",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\ncontent-length: 12\r\n\r\n0123456789",
    ],
    ids=["closed mid-body", "garbage", "closed at once", "two lengths"],
)  # fmt: skip
def test_a_broken_answer_to_a_submit_leaves_it_in_doubt_and_a_status_call_is_retried(answer: bytes) -> None:
    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_request(reader)
            if n <= 2:
                writer.write(answer)
                return  # and close
            writer.write(OK)

        async with Server(handler) as server:
            t = transport(server.url)
            with pytest.raises(errors.TransportError) as sent:  # not a ConnectError: the POST may have arrived
                await t.submit("m/x", {"prompt": "p"})
            assert not isinstance(sent.value, errors.ConnectError)
            assert server.connections == 1  # never resent
            assert await t.call("GET", "/requests/r/status") == {"status": "ok"}  # 2nd broken, 3rd fine
            assert server.connections == 3
            await t.aclose()

    asyncio.run(go())


def test_an_answer_over_the_cap_is_cut_off_not_held() -> None:
    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n")
            for _ in range(200):
                writer.write(b"x" * 65536)
                await writer.drain()

        async with Server(handler) as server:
            wire = Wire(server.url, Secret(TOKEN), httpx.Timeout(5.0), max_answer=1_000_000)
            with pytest.raises(httpx.RemoteProtocolError, match="over 0 MiB: cut off"):
                await wire.exchange("GET", "/requests/r/result", None)
            await wire.aclose()

    asyncio.run(go())


def test_a_server_that_never_answers_times_out_and_one_that_refuses_is_not_reached() -> None:
    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_request(reader)
            await asyncio.sleep(30)

        async with Server(handler) as server:
            t = transport(server.url, timeout=0.3)
            with pytest.raises(errors.CallTimeout):
                await t.call("GET", "/requests/r/status")
            await t.aclose()
            port = server.port
        t = transport(f"http://127.0.0.1:{port}/v1", timeout=2)
        with pytest.raises(errors.ConnectError):  # certainly not sent: a submit may be retried
            await t.submit("m/x", {"prompt": "p"})
        await t.aclose()

    asyncio.run(go())


def test_tls_with_a_certificate_the_client_trusts_and_none_it_does_not(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def go() -> None:
        server: Server

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await server.keep_answering(reader, writer, OK)

        async with Server(handler, tls=served) as server:
            wire = Wire(server.url, Secret(TOKEN), httpx.Timeout(5.0), ssl_context=trusting)
            for _ in range(3):
                assert (await wire.exchange("GET", "/requests/r/status", None)).json() == {"status": "ok"}
            assert wire.connections_made == 1
            await wire.aclose()
            stranger = Wire(server.url, Secret(TOKEN), httpx.Timeout(5.0))  # the system's roots: not this cert
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await stranger.exchange("GET", "/requests/r/status", None)
            await stranger.aclose()
        assert all(TOKEN.encode() in r for r in server.requests) and len(server.requests) == 3

    asyncio.run(go())


def test_the_token_is_in_no_repr_and_odd_paths_are_not_sent() -> None:
    async def go() -> None:
        wire = Wire("http://127.0.0.1:9/v1", Secret(TOKEN), httpx.Timeout(1.0))
        assert TOKEN not in repr(wire) and TOKEN not in str(vars(wire))
        for path in ("/requests/a b/status", "/requests/a\r\nX-Evil: 1/status", "/requests/é/status"):
            with pytest.raises(httpx.UnsupportedProtocol):
                await wire.exchange("GET", path, None)
        t = transport("http://127.0.0.1:9/v1")
        with pytest.raises(errors.Unsendable, match="not sent"):
            await t.call("GET", "/requests/a b/status")
        await t.aclose()

    asyncio.run(go())
