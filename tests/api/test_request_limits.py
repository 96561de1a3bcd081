"""What the transport refuses to send, and to whom the token goes: a body over 64 MiB never leaves, the token goes
only to the API's origin (never to another host, port or scheme, never across a redirect). Real loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import seqnb
from seqnb import errors
from seqnb.api.auth import Secret, same_origin
from seqnb.api.transport import MAX_BODY, RetryPolicy, Transport
from seqnb.client.submit import submit_failure
from seqnb.testing import serving

TOKEN = "tok-" + "s3cret" * 4


class Recorder:
    """An ASGI app that answers 200 ``{}`` (or a redirect for /go) and keeps every call's path and headers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.redirect_to = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.calls.append((scope["path"], headers))
        if scope["path"].endswith("/go"):
            start = {"status": 307, "headers": [(b"location", self.redirect_to.encode()), (b"content-length", b"0")]}
            await send({"type": "http.response.start", **start})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b"{}"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def two_hosts() -> Iterator[tuple[tuple[str, Recorder], tuple[str, Recorder]]]:
    api, other = Recorder(), Recorder()
    with serving(api) as api_url, serving(other) as other_url:
        yield (api_url, api), (other_url, other)


def transport(base_url: str) -> Transport:
    return Transport(base_url + "/v1", Secret(TOKEN), retry=RetryPolicy(attempts=1), timeout=10)


def test_a_body_over_64_mib_is_refused_before_it_leaves(two_hosts: Any) -> None:
    (url, api), _ = two_hosts
    payload = {"prompt": "x" * MAX_BODY}

    async def go() -> tuple[errors.Unsendable, errors.Unsendable]:
        t = transport(url)
        with pytest.raises(errors.Unsendable) as on_submit:
            await t.submit("bytedance/seedream-4-5/sequential", payload)
        with pytest.raises(errors.Unsendable) as on_call:
            await t.call("POST", "/requests/r1/cancel", json=payload, route="cancel")
        assert await t.call("POST", "/requests/r1/cancel", json={"prompt": "x" * 1000}, route="cancel") == {}
        await t.aclose()
        return on_submit.value, on_call.value

    refused, _ = asyncio.run(go())
    assert "64 MiB" in str(refused) and "not sent" in str(refused)
    assert [path for path, _ in api.calls] == ["/v1/requests/r1/cancel"]  # only the small one arrived
    run = seqnb.AsyncRun(request=seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2))
    assert submit_failure(run, payload, refused)[:2] == ("failed", "not sent")  # certainly not sent: not in doubt


def test_the_token_goes_only_to_the_api_origin(two_hosts: Any) -> None:
    (url, api), (other_url, other) = two_hosts
    api.redirect_to = other_url + "/v1/requests/r1/status"

    async def go() -> None:
        t = transport(url)
        await t.call("GET", "/requests/r1/status")
        await t.call("GET", other_url + "/v1/requests/r1/status")  # an absolute URL elsewhere: sent without it
        with pytest.raises(errors.SeqnbError):
            await t.call("GET", "/requests/go")  # a redirect is not followed
        await t.aclose()

    asyncio.run(go())
    assert [h.get("authorization") for _, h in api.calls] == [f"Bearer {TOKEN}", f"Bearer {TOKEN}"]
    assert len(other.calls) == 1 and "authorization" not in other.calls[0][1]  # the absolute URL; no redirect hop


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://model-api.runcomfy.net/v1/models/x", True),
        ("https://model-api.runcomfy.net:443/v1/requests/r/status", True),  # the default port is the same origin
        ("http://model-api.runcomfy.net/v1/models/x", False),  # another scheme
        ("https://model-api.runcomfy.net:8443/v1/models/x", False),  # another port
        ("https://evil.example/v1/models/x", False),
        ("https://model-api.runcomfy.net.evil.example/v1/models/x", False),
    ],
)
def test_the_token_origin_compares_scheme_host_and_port(url: str, sent: bool) -> None:
    assert same_origin(url, "https://model-api.runcomfy.net/v1") is sent
