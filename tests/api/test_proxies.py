"""Proxies from the environment: API calls go through an http(s) proxy, image downloads never do, and a proxy
the engine cannot use is a clear setting error before anything is sent."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import seqnb
from seqnb import errors
from seqnb.api.auth import Secret
from seqnb.api.transport import RetryPolicy, Transport
from seqnb.emulator import EmulatorServer
from seqnb.testing import FAST, emulator

FOX2 = "Generate 2 images of a fox"
PROXY_VARIABLES = ("ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class ForwardProxy:
    """An HTTP forward proxy on loopback for http:// targets: one request per connection, every request line kept."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        self._open.add(conn)
        with conn, conn.makefile("rb") as reader:
            line = reader.readline().decode("latin-1").rstrip("\r\n")
            headers: list[str] = []
            while (header := reader.readline().decode("latin-1").rstrip("\r\n")) != "":
                headers.append(header)
            method, target, _ = line.split(" ")
            self.lines.append(f"{method} {target}")
            length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0)
            body = reader.read(length) if length else b""
            if not target.startswith("http://"):
                conn.sendall(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                return
            hostport, _, path = target.removeprefix("http://").partition("/")
            host, _, port = hostport.rpartition(":")
            kept = [
                h for h in headers if h.split(":")[0].lower() not in ("connection", "proxy-connection", "keep-alive")
            ]
            request = f"{method} /{path} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in kept) + "connection: close\r\n\r\n"
            with socket.create_connection((host, int(port))) as upstream:
                upstream.sendall(request.encode("latin-1") + body)
                while chunk := upstream.recv(65536):
                    conn.sendall(chunk)
        self._open.discard(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in list(self._open):
            conn.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("HTTPS_PROXY", server.url)
    yield server
    server.close()


def test_api_calls_go_through_the_environments_proxy_and_image_downloads_do_not(
    proxy: ForwardProxy, tmp_path: Path
) -> None:
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "ledger.sqlite", download=tmp_path / "img")
        assert client.backend.kind == "emulator"  # the probe of the server went through the proxy too
        run = client.submit(seqnb.Request("seedream-4.5", FOX2, count=2, seed=1)).wait(30)
        assert run.status == "completed"
        assert client.gallery is not None
        frames = client.gallery.frames(run)
        downloads = client.gallery.cache.downloads
        client.close()
        root = emu.base_url
    assert f"GET {root}/" in proxy.lines
    assert f"POST {root}/v1/models/bytedance/seedream-4-5/sequential" in proxy.lines
    assert any(line.startswith(f"GET {root}/v1/requests/{run.request_id}/") for line in proxy.lines)
    assert [f.state for f in frames] == ["cached", "cached"] and downloads >= 2  # fetched, not through the proxy
    assert not any("/files/" in line for line in proxy.lines)  # images: straight from the host, checked as it is


def test_no_proxy_names_hosts_reached_directly(proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
        assert client.submit(seqnb.Request("seedream-4.5", FOX2, count=2, seed=2)).wait(30).status == "completed"
        client.close()
    assert proxy.lines == []


@pytest.mark.parametrize(("name", "for_http"), [("ALL_PROXY", True), ("all_proxy", True), ("HTTPS_PROXY", False)])
def test_a_socks_proxy_is_a_setting_invalid_naming_the_variable_before_anything_is_sent(
    name: str, for_http: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(name, "socks5://user:pw-canary@127.0.0.1:1")
    with pytest.raises(errors.SettingInvalid) as info:  # RunComfy's API: said by the client, before any call
        seqnb.AsyncClient("rc_live_socks", "https://model-api.runcomfy.net")
    message = str(info.value)
    assert f"{name}=socks5://127.0.0.1:1 names a socks5 proxy" in message and "pw-canary" not in message
    assert "http(s) proxy" in message and "NO_PROXY" in message
    with emulator(**FAST) as emu:
        if for_http:
            with pytest.raises(errors.SettingInvalid, match=name):  # a loopback URL: the probe of the server says it
                seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the proxy is not used for this host: all is well
        client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
        assert client.submit(seqnb.Request("seedream-4.5", FOX2, count=2, seed=3)).wait(30).status == "completed"
        client.close()
        assert emu.counters.submits == 1


def test_a_submit_that_meets_an_unusable_proxy_never_left_and_says_so(
    emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine is made again after a close, with the environment as it is then: a submit that cannot go
    through its proxy is refused before it leaves, as not sent (never in doubt)."""
    for variable in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)

    async def go() -> None:
        transport = Transport(emu.base_url + "/v1", Secret(emu.token), retry=RetryPolicy(submit_attempts=1))
        await transport.aclose()
        monkeypatch.setenv("ALL_PROXY", "socks5h://127.0.0.1:1")
        with pytest.raises(errors.SettingInvalid, match="ALL_PROXY") as info:
            await transport.submit("bytedance/seedream-4-5/sequential", {"prompt": FOX2})
        assert isinstance(info.value, errors.Unsendable)  # a run it was for is "not sent", never "unknown"
        await transport.aclose()

    asyncio.run(go())
    assert emu.counters.submits == 0


def test_a_proxy_variable_that_is_no_url_is_a_setting_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "ftp://proxy.example:21")
    with pytest.raises(errors.SettingInvalid, match="HTTPS_PROXY"):
        seqnb.AsyncClient("rc_live_ftp", "https://model-api.runcomfy.net")
