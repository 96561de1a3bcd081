"""The emulator is safe on a laptop: no web page the user opens can reconfigure, wipe or fill it, and no reference
makes it fetch anything (another service on loopback, a router's page), over real loopback HTTP.

A page can send a "simple" cross-origin POST (``Content-Type: text/plain``, no custom header) to
any loopback port without asking; the browser sends its ``Origin`` (and ``Sec-Fetch-Site``).
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from seqnb.emulator import EmulatorServer
from seqnb.testing import emulator
from tests.conftest import E45
from tests.file_host import FileHost, Served

from .test_emulator import on_clock

S45 = "bytedance/seedream-4-5/sequential"

PAGE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
STATE_CHANGING = [("/_emulator/faults", b'{"server_error": 1.0}'), ("/_emulator/restart", b""), ("/files", b"GIF89a")]


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def post(emu: EmulatorServer, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(emu.base_url + path, content=body, headers=headers, timeout=10, trust_env=False)


def submit(emu: EmulatorServer) -> str:
    body = {"prompt": "Generate 2 images of a fox", "sequential_image_generation_options": 2}
    answer = httpx.post(
        f"{emu.base_url}/v1/models/{S45}", json=body, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10
    )
    return str(answer.json()["request_id"])


@pytest.mark.parametrize("token", [None, "t0k"], ids=["no token", "with --token"])
@pytest.mark.parametrize(("path", "body"), STATE_CHANGING)
def test_a_web_pages_cross_origin_post_changes_nothing(token: str | None, path: str, body: bytes) -> None:
    with emulator(token=token) as emu:
        rid = submit(emu)
        refused = post(emu, path, body, PAGE)  # what any page the user opens can send
        assert refused.status_code == 403 and "web page" in refused.json()["error_message"], refused.text
        for headers in (
            {**PAGE, "Authorization": f"Bearer {emu.control_token}"},  # even one that somehow knew the secret
            {"Origin": "null", "Content-Type": "text/plain"},  # a sandboxed frame or a file:// page
            {"Sec-Fetch-Site": "same-site", "Content-Type": "text/plain"},
        ):
            assert post(emu, path, body, headers).status_code == 403, headers
        assert emu.counters.faults == {} and emu.state.faults.server_error == 0  # not reconfigured
        status = httpx.get(f"{emu.base_url}/v1/requests/{rid}/status", headers={"Authorization": f"Bearer {emu.token}"})
        assert status.status_code == 200  # not wiped
        assert len(emu.state.uploads) == 0  # not filled


def test_uploads_need_the_token_or_this_processs_secret() -> None:
    with emulator(token="t0k") as emu:
        for token in (None, "wrong"):
            headers = {"content-type": "image/png", **({"Authorization": f"Bearer {token}"} if token else {})}
            assert post(emu, "/files", png((1, 2, 3)), headers).status_code == 401
        ok = post(emu, "/files", png((1, 2, 3)), {"content-type": "image/png", "Authorization": "Bearer t0k"})
        assert ok.status_code == 200 and "/files/up-" in ok.json()["url"]
    with emulator(token=None) as emu:
        anyone = {"content-type": "image/png", "Authorization": "Bearer any-token"}
        assert post(emu, "/files", png((1, 2, 3)), anyone).status_code == 401
        mine = {"content-type": "image/png", "Authorization": f"Bearer {emu.control_token}"}
        assert post(emu, "/files", png((1, 2, 3)), mine).status_code == 200


def test_a_reference_on_loopback_or_a_private_address_is_never_fetched(host: FileHost) -> None:
    host.routes["/red.png"] = Served(png((220, 30, 30)))
    with on_clock(queue_wait=0, service_time=0.1) as (_, clock, http):
        uploaded = http.post("/files", content=png((30, 30, 220)), headers={"content-type": "image/png"}).json()["url"]
        refs: list[Any] = [host.url + "/red.png", "http://10.0.0.1/x.png", "http://[::1]:1/x.png", uploaded]
        rid = http.post(
            f"/v1/models/{E45}", json={"images": refs, "prompt": "Generate 2 images of a fox",
                                       "sequential_image_generation_options": 2}
        ).json()["request_id"]  # fmt: skip
        clock.advance(5)
        image = http.get(f"/v1/requests/{rid}/result").json()["output"]["images"][0]
        with Image.open(io.BytesIO(httpx.get(image).content)) as img:
            sky = img.convert("RGB").getpixel((2, 2))
        assert isinstance(sky, tuple) and sky[2] > 180 and sky[0] < 80  # its own upload's blue, read locally
    assert host.hits == []  # the canary on another loopback port heard nothing
