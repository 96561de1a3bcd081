"""The emulator's edit-sequential routes: the same validation, inline images and uploads, and images that take their
references' colour."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from seqnb.emulator.images import dominant_colour
from tests.conftest import E40, E45

from .test_emulator import on_clock

FOX = "Generate 2 images of a fox"


def png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def inline(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def upload(http: httpx.Client, data: bytes, kind: str = "image/png") -> httpx.Response:
    return http.post("/files", content=data, headers={"content-type": kind})


def body(model: str, images: Any, count: int = 2) -> dict[str, Any]:
    prompt = "text" if model == E40 else "prompt"
    return {"images": images, prompt: FOX, "sequential_image_generation_options": count}


@pytest.mark.parametrize("model", [E40, E45])
def test_both_routes_take_references_and_refuse_what_the_spec_refuses(model: str) -> None:
    ref = "https://img.example/cat.png"
    most = 10 if model == E40 else 14
    with on_clock() as (emu, _, http):
        assert http.post(f"/v1/models/{model}", json=body(model, [ref])).status_code == 200
        refused = {
            "missing": {k: v for k, v in body(model, [ref]).items() if k != "images"},
            "not a list": body(model, ref),
            "too many": body(model, [ref] * (most + 1), count=1),
            "with the count": body(model, [ref] * 13, count=3),
        }
        for why, payload in refused.items():
            r = http.post(f"/v1/models/{model}", json=payload)
            assert r.status_code == 422, why
            assert r.json()["detail"][0]["loc"] == ["body", "images"], why
        assert emu.counters.submits == 1


def test_uploads_are_served_and_only_images_are_taken() -> None:
    with on_clock() as (_, _, http):
        r = upload(http, png((1, 2, 3)))
        assert r.status_code == 200
        url = r.json()["url"]
        served = httpx.get(url)
        assert served.content == png((1, 2, 3)) and served.headers["content-type"] == "image/png"
        assert upload(http, b"hello", "text/plain").status_code == 415


def test_a_series_takes_the_dominant_colour_of_its_references() -> None:
    with on_clock(queue_wait=0, service_time=0.1) as (_, clock, http):
        red = upload(http, png((220, 30, 30))).json()["url"]
        rid = http.post(f"/v1/models/{E45}", json=body(E45, [red])).json()["request_id"]
        far = http.post(f"/v1/models/{E45}", json=body(E45, ["https://img.example/cat.png"])).json()["request_id"]
        clock.advance(5)
        images = http.get(f"/v1/requests/{rid}/result").json()["output"]["images"]
        frame = httpx.get(images[0]).content
        with Image.open(io.BytesIO(frame)) as img:
            sky = img.convert("RGB").getpixel((2, 2))
        assert isinstance(sky, tuple) and sky[0] > 180 and sky[1] < 80 and sky[2] < 80  # the references' red
        assert dominant_colour([png((220, 30, 30))]) == (220, 30, 30)
        # a reference beyond this machine is never fetched: the series is made without its trait
        output = http.get(f"/v1/requests/{far}/result").json()["output"]
        assert httpx.get(output["images"][0]).status_code == 200


def test_an_inline_image_is_taken_as_runcomfys_tools_send_it_and_colours_the_series() -> None:
    with on_clock(queue_wait=0, service_time=0.1) as (emu, clock, http):
        rid = http.post(f"/v1/models/{E40}", json=body(E40, [inline(png((30, 200, 30)))])).json()["request_id"]
        clock.advance(5)
        images = http.get(f"/v1/requests/{rid}/result").json()["output"]["images"]
        with Image.open(io.BytesIO(httpx.get(images[0]).content)) as img:
            sky = img.convert("RGB").getpixel((2, 2))
        assert isinstance(sky, tuple) and sky[1] > 180 and sky[0] < 80  # the inline reference's green
        assert emu.counters.submits == 1


@pytest.mark.parametrize(
    ("reference", "said"),
    [
        (inline(png((9, 9, 9), (10, 48))), "Each reference image must be more than 14 pixels wide."),  # its own rule
        (inline(png((9, 9, 9), (48, 10))), "Each reference image must be more than 14 pixels high."),
        (inline(png((9, 9, 9), (400, 20))), "must be below 16"),
        (inline(b"\0" * (6 * 2**20 + 1)), "at most 6,291,456"),  # RunComfy's cap on an inline PNG
        (inline(b"not an image"), "is not an image"),
        ("data:image/png;sha256=" + "ab" * 32 + ",48x48", "not a base64 image"),  # a record's stand-in is never sent
        ("data:text/html;base64,PGI+", "not a base64 image"),
    ],
)
def test_an_inline_image_against_the_rules_is_refused_in_their_words(reference: str, said: str) -> None:
    with on_clock() as (emu, _, http):
        r = http.post(f"/v1/models/{E45}", json=body(E45, ["https://img.example/cat.png", reference]))
        assert r.status_code == 422, r.text
        (detail,) = r.json()["detail"]
        assert detail["loc"] == ["body", "images"] and said in detail["msg"], detail
        assert emu.counters.submits == 0
