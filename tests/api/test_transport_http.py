"""The API transport against servers that answer as real ones do and as broken ones do: raw TCP (and TLS)
on loopback, each server scripted byte by byte. Keep-alive is used and never trusted blindly; a failure
after the request left is never a "not sent"; no answer is read beyond its end or beyond the cap."""

from __future__ import annotations

import asyncio
import gzip
import os
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from seqnb import errors
from seqnb.api import transport as transport_module
from seqnb.api.auth import Secret
from seqnb.api.transport import RetryPolicy, Transport

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
        assert f"\r\nauthorization: bearer {TOKEN}\r\n".lower().encode() in first.lower()  # names: any case
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


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
def test_an_answer_over_the_cap_is_cut_off_not_held(declared: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "MAX_ANSWER", 1_000_000)
    sent: list[int] = []

    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_request(reader)
            head = b"content-length: 100000000" if declared else b"transfer-encoding: chunked"
            writer.write(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n")
            chunk = b"x" * 65536 if declared else b"10000\r\n" + b"x" * 65536 + b"\r\n"
            for _ in range(200):
                writer.write(chunk)
                await writer.drain()
                sent.append(1)

        async with Server(handler) as server:
            t = transport(server.url)
            with pytest.raises(errors.TransportError, match="over 0 MiB, cut off") as info:
                await t.submit("m/x", {"prompt": "p"})
            assert info.value.maybe_sent and server.connections == 1  # in doubt, never resent
            await t.aclose()
        assert len(sent) < 200  # the client stopped reading: the rest was never taken in

    asyncio.run(go())


def test_a_compressed_answer_is_decoded_and_a_compression_bomb_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "MAX_ANSWER", 1_000_000)
    small = gzip.compress(b'{"status":"zipped"}')
    bomb = gzip.compress(b'{"pad":"' + b" " * 50_000_000 + b'"}')  # 50 kB that inflate to 50 MB

    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            while request := await read_request(reader):
                body = bomb if b"bomb" in request else small
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(body))
                writer.write(body)

        async with Server(handler) as server:
            t = transport(server.url)
            assert await t.call("GET", "/requests/r/status") == {"status": "zipped"}
            with pytest.raises(errors.TransportError, match="cut off"):
                await t.submit("m/bomb", {"prompt": "p"})
            await t.aclose()

    asyncio.run(go())


def test_bytes_after_a_complete_answer_never_answer_the_next_call() -> None:
    """Sent with the answer (a smuggled second answer) or later, while the connection is idle (a 408 before a
    close): either way the connection is not used again, and the next call gets its own answer."""
    smuggled = b'HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n{"status":"SMUGGLED"}'

    async def go() -> None:
        server: Server

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            while request := await read_request(reader):
                server.requests.append(request)
                if n == 1:
                    writer.write(OK + smuggled)
                elif n == 2:
                    writer.write(OK)
                    await asyncio.sleep(0.05)
                    writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
                else:
                    writer.write(OK)

        async with Server(handler) as server:
            t = transport(server.url)
            assert await t.call("GET", "/requests/r/status") == {"status": "ok"}
            await asyncio.sleep(0.05)
            assert await t.submit("m/x", {"prompt": "p"}) == {"status": "ok"}  # not the smuggled answer
            await asyncio.sleep(0.2)
            assert await t.submit("m/x", {"prompt": "p"}) == {"status": "ok"}  # not the 408
            await t.aclose()
        assert server.connections == 3 and len(server.requests) == 3  # each submit sent once, on a fresh connection

    asyncio.run(go())


def test_a_reused_connection_dropped_under_a_submit_leaves_it_in_doubt_in_seqnbs_words() -> None:
    async def go() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await read_request(reader)
            writer.write(OK)
            await writer.drain()
            await read_request(reader)  # the submit arrived; the server drops the connection without answering
            writer.transport.abort()

        async with Server(handler) as server:
            t = transport(server.url)
            assert await t.call("GET", "/requests/r/status") == {"status": "ok"}
            with pytest.raises(errors.TransportError) as info:
                await t.submit("m/x", {"prompt": "p"})
            assert type(info.value) is errors.TransportError and info.value.maybe_sent
            assert str(info.value) == (
                f"POST /models/m/x: no complete answer (127.0.0.1:{server.port} closed the connection without a "
                "complete answer); the request may have arrived"
            )
            assert server.connections == 1  # never resent
            await t.aclose()

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


def test_tls_is_verified_against_the_trusted_roots_and_ssl_cert_file_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)

    async def go() -> None:
        server: Server

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
            await server.keep_answering(reader, writer, OK)

        async with Server(handler, tls=served) as server:
            stranger = transport(server.url)  # the system's roots: not this certificate
            with pytest.raises(errors.ConnectError, match="not trusted"):  # certainly not sent
                await stranger.submit("m/x", {"prompt": "p"})
            await stranger.aclose()
            assert server.requests == []
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            trusting = transport(server.url)
            for _ in range(3):
                assert await trusting.call("GET", "/requests/r/status") == {"status": "ok"}
            await trusting.aclose()
        assert server.connections == 1  # the refused handshake never made one; then one kept alive for three calls
        assert all(TOKEN.encode() in r for r in server.requests) and len(server.requests) == 3

    asyncio.run(go())


def test_the_token_is_in_no_repr_and_odd_paths_are_not_sent() -> None:
    async def go() -> None:
        t = transport("http://127.0.0.1:9/v1")
        assert TOKEN not in repr(t) and TOKEN not in str(vars(t)) and TOKEN not in repr(t._http)
        for path in ("/requests/a b/status", "/requests/a\r\nX-Evil: 1/status", "/requests/é/status"):
            with pytest.raises(errors.Unsendable, match="not sent"):
                await t.call("GET", path)
        await t.aclose()

    asyncio.run(go())


def test_a_script_that_never_closes_its_client_ends_quietly(tmp_path: Path) -> None:
    """The pools of clients left open are shut at exit: no "Unclosed client session" lines from aiohttp."""
    script = tmp_path / "forgetful.py"
    script.write_text(
        "import seqnb\n"
        "client = seqnb.connect(ledger=False)\n"  # the embedded emulator; images downloaded too
        "run = client.submit(seqnb.Request('seedream-4.0', 'Generate 2 images of a gull', count=2, seed=1))\n"
        "run.wait(30)\n"
        "print(run.status, len(client.gallery.frames(run)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert done.stdout.strip() == "completed 2", done.stderr
    assert "Unclosed" not in done.stderr, done.stderr
