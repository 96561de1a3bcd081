"""Local references the way RunComfy's own tools send them: a PNG data URI in the body, within their caps (32 megapixels,
6 MiB as PNG, 64 MiB in all), and recorded everywhere by a stand-in without the bytes, which a rerun finds again."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import seqnb
from seqnb import ImageCache, RequestInvalid
from seqnb.emulator import EmulatorServer
from seqnb.model.references import INLINE_PREFIX, MAX_INLINE_BYTES, StandIn
from seqnb.testing import emulator

FOX = "Generate 2 images of a fox"
FAST = {"queue_wait": 0.0, "service_time": 0.05}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def noise(width: int, height: int) -> Image.Image:
    """An image PNG cannot compress: about 3 bytes a pixel."""
    return Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with emulator(**FAST) as server:
        yield server


@pytest.fixture
def client(emu: EmulatorServer, tmp_path: Path) -> Iterator[seqnb.Client]:
    c = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "images"))
    yield c
    c.close()


def sent_images(emu: EmulatorServer) -> list[list[str]]:
    """The ``images`` of every job the emulator accepted, as its submits carried them."""
    return [list(job.payload.get("images", [])) for job in emu.state.queue.jobs.values()]


def test_a_local_file_goes_as_a_png_data_uri_and_is_recorded_without_its_bytes(
    emu: EmulatorServer, client: seqnb.Client, tmp_path: Path
) -> None:
    jpeg = tmp_path / "mug.jpg"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(jpeg, format="JPEG", quality=95)
    run = client.submit("seedream-4.5-edit", FOX, count=2, references=[str(jpeg)]).wait(30)
    assert run.status == "completed", run.error

    ((sent,),) = sent_images(emu)  # what reached the service: an inline PNG, as RunComfy's tools send it
    assert sent.startswith(INLINE_PREFIX)
    data = base64.b64decode(sent.removeprefix(INLINE_PREFIX))
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.size == (64, 48)

    (kept,) = run.request.references  # what the run, and every record of it, holds: the stand-in
    assert kept == f"data:image/png;sha256={hashlib.sha256(data).hexdigest()},64x48"
    assert client.ledger is not None
    row = client.ledger.runs().iloc[0]
    assert json.loads(row["reference_urls"]) == [kept] and kept in row["payload"]
    assert ";base64," not in row["payload"] and len(row["payload"]) < 1000  # no bytes in the ledger
    client.settle(30)
    (saved, *_) = client.export_images([run], tmp_path / "out")
    with Image.open(saved) as img:
        meta = json.loads(img.info["seqnb"])
        assert meta["references"] == [kept] and ";base64," not in img.info["seqnb"] + img.info["parameters"]
    page = client.report([run], tmp_path / "r.html").read_text()
    assert ";base64,iVBOR" not in page.replace(";base64,/9j/", "")  # its thumbnails are JPEG; no inline PNG reference
    grid = client.gallery.references(run) if client.gallery else []
    assert len(grid) == 1 and grid[0].image is not None and grid[0].image.sha256 in kept  # the cache has its bytes


def test_a_pil_image_bytes_and_a_file_url_are_local_references_too(
    emu: EmulatorServer, client: seqnb.Client, tmp_path: Path
) -> None:
    blue = tmp_path / "blue.png"
    blue.write_bytes(png((30, 30, 220)))
    picture = Image.new("RGBA", (40, 40), (10, 200, 10, 128))
    refs: list[Any] = [picture, png((220, 30, 30)), blue.as_uri(), blue]
    run = client.submit("seedream-4.5-edit", FOX, count=2, references=refs).wait(30)
    assert run.status == "completed", run.error
    stand_ins = [StandIn.parse(r) for r in run.request.references]
    assert [(s.width, s.height) for s in stand_ins if s] == [(40, 40), (64, 48), (64, 48), (64, 48)]
    assert stand_ins[2] == stand_ins[3]  # the same file, the same PNG
    ((*images,),) = sent_images(emu)
    assert all(i.startswith(INLINE_PREFIX) for i in images)
    with Image.open(io.BytesIO(base64.b64decode(images[0].removeprefix(INLINE_PREFIX)))) as img:
        assert img.mode == "RGBA"  # its transparency kept
    single = client.submit("seedream-4.0-edit", FOX, count=2, references=png((1, 2, 3)))  # one, not a list of bytes
    assert len(single.request.references) == 1 and StandIn.parse(single.request.references[0]) is not None


def test_a_sweep_takes_pil_images_as_its_references_axis(client: seqnb.Client) -> None:
    red, blue = Image.new("RGB", (32, 32), (220, 30, 30)), Image.new("RGB", (32, 32), (30, 30, 220))
    sweep = client.sweep(prompts=[FOX], models=["seedream-4.5-edit"], references=[[red], [blue]], seeds=[1], quiet=True)
    client.wait_all(sweep, timeout=30)
    assert [r.status for r in sweep] == ["completed", "completed"]
    assert len({r.request.references for r in sweep}) == 2


def test_a_plan_takes_local_references_as_its_sweep_does_and_uploads_nothing(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    hosted: list[Path] = []

    def uploader(path: Path) -> str:
        hosted.append(path)
        return emu.base_url + "/files/nothing.png"

    (tmp_path / "red.png").write_bytes(png((220, 30, 30)))
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False, uploader=uploader)
    try:
        plan = client.plan(prompts=[FOX], models=["seedream-4.5-edit"], references=[str(tmp_path / "red.png")])
        assert plan.errors == [] and plan.total_text() == "USD 0.08"  # priced, as its sweep would be
        (request,) = plan.requests
        assert StandIn.parse(request.references[0]) is not None and hosted == []  # a plan spends nothing
        with pytest.raises(RequestInvalid, match="no file"):
            client.plan(prompts=[FOX], models=["seedream-4.5-edit"], references=[str(tmp_path / "missing.png")])
        sweep = client.sweep(plan, quiet=True)  # the plan sent as planned
        client.wait_all(sweep, timeout=30)
        assert [r.status for r in sweep] == ["completed"]
    finally:
        client.close()


def test_an_image_over_32_megapixels_is_refused_with_the_largest_size_that_fits(
    emu: EmulatorServer, client: seqnb.Client
) -> None:
    huge = Image.new("L", (8000, 4002))  # 32.016 megapixels: never encoded, refused by its size
    with pytest.raises(RequestInvalid) as info:
        client.submit("seedream-4.5-edit", FOX, count=2, references=[huge])
    said = str(info.value)
    assert "the PIL image (8000x4002)" in said and "32.0 megapixels" in said and "at most 32" in said
    assert "resize it to at most 7998x4000" in said and "uploader" in said  # 31,992,000 pixels
    assert emu.counters.submits == 0 and client.runs() == []  # nothing recorded, nothing sent


def test_an_image_over_6_mib_as_png_is_refused_with_a_size_that_fits(emu: EmulatorServer, client: seqnb.Client) -> None:
    big = noise(1600, 1400)  # about 6.7 MB as PNG
    with pytest.raises(RequestInvalid) as info:
        client.submit("seedream-4.5-edit", FOX, count=2, references=[big])
    said = str(info.value)
    assert "MiB as PNG (1600x1400)" in said and "at most 6 MiB as PNG" in said
    width, height = map(int, said.split("resize it to about ")[1].split(",")[0].split("x"))
    assert width < 1600 and height < 1400 and abs(width / height - 1600 / 1400) < 0.01
    buf = io.BytesIO()
    big.resize((width, height)).save(buf, format="PNG")
    assert len(buf.getvalue()) <= MAX_INLINE_BYTES  # the size said fits
    assert emu.counters.submits == 0


def test_inline_images_over_64_mib_in_one_request_are_refused_before_anything(
    emu: EmulatorServer, client: seqnb.Client
) -> None:
    near_cap = noise(1250, 1250)  # about 4.5 MiB as PNG, 6 MiB in base64
    with pytest.raises(
        RequestInvalid, match=r"the 11 images sent inline make the request 6\d\.\d MiB, over the 64 MiB"
    ):
        client.submit("seedream-4.5-edit", FOX, count=2, references=[near_cap] * 11)
    assert emu.counters.submits == 0 and emu.counters.too_large == 0 and client.runs() == []


def test_a_sweep_whose_inline_set_is_over_64_mib_is_refused_before_anything_is_recorded(
    emu: EmulatorServer, client: seqnb.Client
) -> None:
    near_cap = noise(1250, 1250)
    with pytest.raises(
        RequestInvalid, match=r"set 2 of the references axis: its 11 images sent inline make a request 6\d\.\d MiB"
    ):
        client.sweep(prompts=[FOX], models=["seedream-4.5-edit"], references=[[near_cap], [near_cap] * 11], quiet=True)
    assert emu.counters.submits == 0 and emu.counters.too_large == 0 and client.runs() == []
    assert client.ledger is not None and client.ledger.count() == 0


def test_the_catalogs_rules_refuse_an_image_before_the_submit_in_the_services_words(
    emu: EmulatorServer, client: seqnb.Client
) -> None:
    """The emulator's catalog gives the references field rules (``validations``): they are checked before spending."""
    with pytest.raises(RequestInvalid) as info:
        client.submit("seedream-4.5-edit", FOX, count=2, references=[Image.new("RGB", (10, 40))])
    said = str(info.value)
    assert "Each reference image must be more than 14 pixels wide." in said and "(10x40)" in said
    assert emu.counters.submits == 0


def test_a_rerun_and_a_promote_of_an_inline_run_send_the_image_again_from_the_cache(
    emu: EmulatorServer, client: seqnb.Client, tmp_path: Path
) -> None:
    first = client.submit("seedream-4.5-edit", FOX, count=2, references=[png((220, 30, 30))]).wait(30)
    again = client.rerun(first, seed=7).wait(30)
    (promoted,) = client.promote([first], resolution="4K", quiet=True)
    promoted.wait(30)
    assert [r.status for r in (first, again, promoted)] == ["completed"] * 3
    assert again.request.references == promoted.request.references == first.request.references
    sent = sent_images(emu)
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2] and sent[0][0].startswith(INLINE_PREFIX)

    # in a new session, on the same cache and ledger: still found by its hash
    assert client.ledger is not None
    other = seqnb.connect(emu.token, emu.base_url, ledger=client.ledger, download=ImageCache(tmp_path / "images"))
    try:
        assert other.rerun(first.id, seed=8).wait(30).status == "completed"
        client.settle(30)
        other.settle(30)  # no download still writing into the cache
        shutil.rmtree(tmp_path / "images")  # the image cache emptied
        with pytest.raises(RequestInvalid) as info:
            other.rerun(first.id, seed=9)
        said = str(info.value)
        assert first.request.references[0] in said and "no longer in the image cache" in said
        assert "give the image again" in said
    finally:
        other.close()
    assert len(sent_images(emu)) == 4  # nothing sent for the one whose image is gone


def test_a_rerun_of_a_row_naming_a_local_file_never_reads_it(
    emu: EmulatorServer, client: seqnb.Client, tmp_path: Path
) -> None:
    """A shared ledger's row is another person's word: a rerun sends what it recorded (URLs, stand-ins), not a file of
    this machine a row names."""
    first = client.submit("seedream-4.5-edit", FOX, count=2, references=[png((220, 30, 30))]).wait(30)
    client.settle(30)
    secret = tmp_path / "private.png"
    secret.write_bytes(png((1, 2, 3)))
    assert client.ledger is not None and client.ledger.path is not None
    with sqlite3.connect(client.ledger.path) as db:  # the row tampered with: a path where the stand-in was
        (payload,) = db.execute("SELECT payload FROM runs WHERE id = ?", (first.id,)).fetchone()
        db.execute(
            "UPDATE runs SET payload = ? WHERE id = ?",
            (payload.replace(first.request.references[0], str(secret)), first.id),
        )
    other = seqnb.connect(emu.token, emu.base_url, ledger=client.ledger, download=ImageCache(tmp_path / "images"))
    try:
        with pytest.raises(RequestInvalid, match="is not a URL or an inline image seqnb recorded") as info:
            other.rerun(first.id, seed=3)
        assert str(secret) in str(info.value)
        assert other.rerun(first.id, seed=4, references=[str(secret)]).wait(30).status == "completed"  # given: sent
    finally:
        other.close()
    assert len(sent_images(emu)) == 2


def test_an_uploader_hosts_a_pil_image_instead_of_sending_it_inline(emu: EmulatorServer, tmp_path: Path) -> None:
    hosted: list[Path] = []

    def uploader(path: Path) -> str:
        hosted.append(path)
        return emu.base_url + "/files/nothing.png"  # any URL: here the emulator's, which it never fetches

    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False, uploader=uploader)
    try:
        run = client.submit("seedream-4.5-edit", FOX, count=2, references=[Image.new("RGB", (32, 32), (9, 9, 9))])
        assert run.request.references == (emu.base_url + "/files/nothing.png",)
        (path,) = hosted
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size == (32, 32)  # the PNG it would have sent inline
    finally:
        client.close()
