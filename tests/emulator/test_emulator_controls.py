"""The emulator's own control routes (/_emulator/*): who may use them, where they answer, and bad values."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from seqnb.emulator import EmulatorConfig, EmulatorServer, create_app
from seqnb.emulator.config import CONTROL_SECRET
from seqnb.testing import emulator

CONTROLS = [("GET", "/_emulator/counters"), ("POST", "/_emulator/faults"), ("POST", "/_emulator/restart")]


def call(emu: EmulatorServer, method: str, path: str, token: str | None, base: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {} if path.endswith("faults") else None
    with httpx.Client(base_url=base or emu.base_url, trust_env=False, timeout=10) as http:
        return http.request(method, path, headers=headers, json=body)


def asgi_call(config: EmulatorConfig, method: str, path: str, token: str | None, address: str) -> httpx.Response:
    """A call to the app in-process, arriving on ``address`` (no socket: nothing leaves this process)."""
    app = create_app(config)

    async def go() -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {} if path.endswith("faults") else None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{address}") as http:
            return await http.request(method, path, headers=headers, json=body)

    return asyncio.run(go())


@pytest.mark.parametrize(("method", "path"), CONTROLS)
def test_controls_need_the_token_when_one_is_set(emu: EmulatorServer, method: str, path: str) -> None:
    for token in (None, "not-the-token"):
        r = call(emu, method, path, token)
        assert r.status_code == 401 and r.json()["error_code"] == 400004
    assert call(emu, method, path, emu.token).status_code == 200


@pytest.mark.parametrize(("method", "path"), CONTROLS)
def test_without_a_token_the_controls_take_this_processs_secret(method: str, path: str) -> None:
    """Any Bearer token opens the API of an emulator without a token, but not its controls: a web page could send one."""
    with emulator(token=None) as emu:
        for token in (None, "any-token"):
            r = call(emu, method, path, token)
            assert r.status_code == 401 and "control token it printed at start" in r.json()["error_message"]
        assert emu.control_token == CONTROL_SECRET and len(CONTROL_SECRET) >= 24
        assert call(emu, method, path, emu.control_token).status_code == 200


@pytest.mark.parametrize(("method", "path"), CONTROLS)
def test_controls_are_off_beyond_loopback_unless_asked_for(method: str, path: str) -> None:
    wide = EmulatorConfig(token="t0k", host="0.0.0.0")
    r = asgi_call(wide, method, path, "t0k", "192.0.2.7")
    assert r.status_code == 404 and r.text == "Not Found"  # as if there were no such route
    status = asgi_call(wide, "GET", "/v1/requests/x/status", "t0k", "192.0.2.7")
    assert status.json()["error_code"] == 404001  # the API itself answers
    asked = EmulatorConfig(token="t0k", host="0.0.0.0", controls=True)
    assert asgi_call(asked, method, path, None, "192.0.2.7").status_code == 401
    assert asgi_call(asked, method, path, "t0k", "192.0.2.7").status_code == 200


def test_controls_can_be_switched_off_on_loopback_too() -> None:
    with emulator(controls=False) as emu:
        assert {call(emu, m, p, emu.token).status_code for m, p in CONTROLS} == {404}


def test_a_call_arriving_beyond_loopback_finds_no_controls() -> None:
    """An app told it listens on loopback, yet served wider (as by hand under uvicorn): the call's own address decides."""
    app = create_app(EmulatorConfig(token="t0k"))

    async def status_from(address: str) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{address}") as http:
            r = await http.get("/_emulator/counters", headers={"Authorization": "Bearer t0k"})
            return r.status_code

    assert asyncio.run(status_from("127.0.0.1")) == 200
    assert asyncio.run(status_from("192.0.2.7")) == 404


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"rate_limt": 0.5}, "rate_limt"),
        ({"rate_limit": 1.5}, "rate_limit"),
        ({"drop": -0.1}, "drop"),
        ({"slow": "0.5"}, "slow"),
        ({"fail": True}, "fail"),
        ({"retry_after": -1}, "retry_after"),
        ({"slow_seconds": 1e9}, "slow_seconds"),
        ({"seed": [1]}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"routes": "status"}, "routes"),
        ({"routes": ["status", "upload"]}, "upload"),
        ([0.5], "JSON object"),
        ("rate_limit", "JSON object"),
    ],
)
def test_bad_fault_values_are_400s_that_say_what_is_wrong(http: httpx.Client, body: Any, named: str) -> None:
    r = http.post("/_emulator/faults", json=body)
    assert r.status_code == 400, r.text
    assert named in r.json()["error_message"]
    assert http.get("/v1/requests/x/status").status_code == 404  # the faults in force did not change


def test_non_json_and_bad_route_are_400s(http: httpx.Client) -> None:
    r = http.post("/_emulator/faults", content=b"rate_limit=1", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "Bad faults" in r.json()["error_message"]
    r = http.post("/_emulator/faults?route=upload", json={"rate_limit": 1.0})
    assert r.status_code == 400 and "upload" in r.json()["error_message"]


def test_faults_for_one_route_over_http(http: httpx.Client) -> None:
    assert http.post("/_emulator/faults?route=result", json={"server_error": 1.0}).status_code == 200
    assert http.get("/v1/requests/x/result").status_code in (500, 502, 503)
    assert http.get("/v1/requests/x/status").status_code == 404
    assert http.post("/_emulator/faults", json={}).status_code == 200  # all routes: clears the per-route ones
    assert http.get("/v1/requests/x/result").status_code == 404
