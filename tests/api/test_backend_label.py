"""The backend label is honest: the emulator only when the server says so, RunComfy's variables honoured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

import seqnb
from seqnb.api.backend import EMULATOR_HEADER
from seqnb.emulator import EmulatorServer
from seqnb.testing import emulator, serving


@contextmanager
def stripping_proxy(target: str) -> Iterator[str]:
    """A reverse proxy on loopback that forwards to ``target`` and drops the emulator's header, as a tunnel would."""
    upstream = httpx.AsyncClient(base_url=target, timeout=10)

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()  # type: ignore[operator]
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() != b"host"]
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        answer = await upstream.request(scope["method"], path, content=body, headers=headers)
        kept = [
            (k.encode(), v.encode())
            for k, v in answer.headers.items()
            if k.lower() not in (EMULATOR_HEADER, "content-length", "transfer-encoding", "content-encoding")
        ]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": answer.content})  # type: ignore[operator]

    with serving(app) as url:
        yield url


def test_the_embedded_and_a_named_emulator_are_the_emulator(emu: EmulatorServer) -> None:
    assert seqnb.Client().backend.kind == "emulator"
    assert seqnb.Client(emu.token, emu.base_url).backend.kind == "emulator"


def test_a_real_looking_token_through_a_loopback_tunnel_is_runcomfy() -> None:
    with emulator(token=None) as upstream, stripping_proxy(upstream.base_url) as url:  # any token is accepted
        client = seqnb.connect("rc_live_0123456789abcdef", url, ledger=False, download=False)
        assert client.backend.kind == "runcomfy"
        assert "RunComfy" in str(client.backend) and "nothing is charged" not in str(client.backend)
        assert "0123456789abcdef" not in repr(client) + str(client.backend)
        run = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a fox", count=1, seed=1)).wait(20)
        assert run.status == "completed"  # the same code path, another label
        client.close()


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
def test_runcomfy_model_api_base_is_honoured_with_or_without_v1(
    emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.delenv("RUNCOMFY_BASE_URL", raising=False)
    monkeypatch.setenv("RUNCOMFY_MODEL_API_BASE", emu.base_url + suffix)
    monkeypatch.setenv("RUNCOMFY_TOKEN", emu.token)
    client = seqnb.Client()
    assert client.backend.base_url.startswith(emu.base_url)
    assert client.aio._transport.base_url == emu.base_url + "/v1"
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 1 image of a fox", count=1, seed=1)).wait(20)
    assert run.status == "completed"
    client.close()


@pytest.mark.parametrize("value", ["http://[::1", "https://[fe80::1/v1", "http://127.0.0.1:99999", "http://:80"])
@pytest.mark.parametrize("where", ["RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE", "RUNCOMFY_API_BASE", "base_url"])
def test_a_base_url_that_cannot_be_parsed_is_a_setting_invalid_naming_it(
    monkeypatch: pytest.MonkeyPatch, where: str, value: str
) -> None:
    for name in ("RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE", "RUNCOMFY_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    if where == "base_url":
        make = lambda: seqnb.Client("tok", value)  # noqa: E731
    else:
        monkeypatch.setenv(where, value)
        make = lambda: seqnb.Client("tok", "https://model-api.runcomfy.net" if where == "RUNCOMFY_API_BASE" else None)  # noqa: E731
    with pytest.raises(seqnb.SettingInvalid) as info:
        make()
    assert str(info.value).startswith(f"{where}: {value!r} is not an http(s) URL with a host; write e.g. https://")
