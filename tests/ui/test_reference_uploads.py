"""Compose with local references: images uploaded beside the URL box go inline in the request and the sweep the
panel sends, by their stand-ins, refused over a cap in the API's words, and the widget keeps none of their bytes."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ipywidgets.embed import dependency_state, embed_data
from PIL import Image

import seqnb
from seqnb import RequestInvalid
from seqnb.emulator import EmulatorServer
from seqnb.images.cache import ImageCache
from seqnb.model.references import INLINE_PREFIX, StandIn
from seqnb.ui.request_panel import RequestPanel

MUG = "Generate 2 images of this mug on a kitchen shelf"


@pytest.fixture
def client(emu: EmulatorServer, tmp_path: Path) -> Iterator[seqnb.Client]:
    c = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    yield c
    c.close()


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=kind)
    return buf.getvalue()


def upload(*files: tuple[str, bytes]) -> tuple[dict[str, Any], ...]:
    """A FileUpload's value as ipywidgets 8 shapes it after the browser sends files."""
    when = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)
    kinds = {"png": "image/png", "jpg": "image/jpeg"}
    return tuple(
        {
            "name": name,
            "type": kinds.get(name.rsplit(".", 1)[-1], ""),
            "size": len(data),
            "content": memoryview(data),
            "last_modified": when,
        }
        for name, data in files
    )


def edit_panel(client: seqnb.Client, sent: list[Any]) -> RequestPanel:
    panel = RequestPanel(client, on_sent=sent.extend)
    panel.model.value = "seedream-4.5-edit"
    panel.prompt.value = MUG
    panel.count.value = 2
    return panel


def test_uploaded_images_go_inline_in_the_submit_and_sweep_and_are_recorded_by_stand_ins(
    client: seqnb.Client, emu: EmulatorServer
) -> None:
    sent: list[Any] = []
    panel = edit_panel(client, sent)
    photo = encoded(Image.frombytes("RGB", (600, 500), os.urandom(600 * 500 * 3)))  # about 900 kB, as PNG
    side = encoded(Image.new("RGB", (64, 48), (30, 30, 220)), "JPEG")
    stray = encoded(Image.new("RGB", (40, 40), (10, 200, 10)))
    panel.uploads.button.value = upload(("front.png", photo), ("side.jpg", side), ("stray.png", stray))

    assert panel.uploads.button.value == ()  # handed over: the widget holds no bytes
    front, side_ref, stray_ref = (StandIn.parse(r) for r in panel.uploads.stand_ins)
    assert front and side_ref and stray_ref and (side_ref.width, side_ref.height) == (64, 48)
    assert len(panel.uploads.tiles.children) == 3 and panel.check().ok
    assert "remove stray.png" in panel.uploads.tiles.children[2].children[1].tooltip
    panel.uploads.tiles.children[2].children[1].click()  # remove the stray one
    assert panel.uploads.stand_ins == [str(front), str(side_ref)] and len(panel.uploads.tiles.children) == 2
    # what a saved notebook keeps of the panel: its own widgets (embed_data alone takes every widget of the process)
    state = json.dumps(embed_data(views=[panel], state=dependency_state([panel]))["manager_state"])
    assert len(state) < 100_000 < len(photo)

    assert panel.request().references == (str(front), str(side_ref))
    panel.sweep_mode.value = True
    panel.sweep_models.value = ("seedream-4.5-edit",)
    panel.sweep_seeds.value = "1-2"
    plan = panel.plan()
    assert plan.runs == 2 and all(r.references == (str(front), str(side_ref)) for r in plan.requests)
    assert "2 runs" in panel.sweep_summary.value and not panel.sweep_button.disabled
    panel.submit_button.click()
    panel.sweep_button.click()
    assert len(sent) == 3, panel.message.value
    client.wait_all(sent, timeout=60)
    assert [r.status for r in sent] == ["completed"] * 3

    assert client.ledger is not None
    rows = client.ledger.runs()
    assert all(json.loads(refs) == [str(front), str(side_ref)] for refs in rows["reference_urls"])
    assert not rows["payload"].str.contains(";base64,").any()  # no bytes in the ledger
    received = [job.payload["images"] for job in emu.state.queue.jobs.values()]
    assert len(received) == 3
    for images in received:  # what reached the service: each image inline, as a PNG data URI
        assert all(i.startswith(INLINE_PREFIX) for i in images)
        hashes = [hashlib.sha256(base64.b64decode(i.removeprefix(INLINE_PREFIX))).hexdigest() for i in images]
        assert hashes == [front.sha256, side_ref.sha256]
    panel.close()


def test_an_upload_over_a_cap_is_refused_in_the_apis_words_and_nothing_is_recorded(
    client: seqnb.Client, emu: EmulatorServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(encoded(Image.new("RGB", (8000, 4002), (200, 40, 40))))  # 32.016 megapixels
    with pytest.raises(RequestInvalid) as info:
        client.submit("seedream-4.5-edit", MUG, count=2, references=[str(big)])
    (said,) = [p.message for p in info.value.report.errors]

    sent: list[Any] = []
    panel = edit_panel(client, sent)
    small = encoded(Image.new("RGB", (48, 48), (30, 30, 220)))
    panel.uploads.button.value = upload(("big.png", big.read_bytes()), ("small.png", small))
    notes = panel.uploads.notes.value
    assert "<b>references</b>: " + html.escape(said.replace(str(big), "big.png")) in notes
    assert "resize it to at most 7998x4000" in notes  # the largest size that fits
    assert panel.uploads.button.value == () and len(panel.uploads.stand_ins) == 1  # the small one taken
    assert emu.counters.submits == 0 and client.runs() == []
    assert client.ledger is not None and client.ledger.count() == 0
    panel.close()


def test_an_upload_gone_from_the_cache_before_the_submit_is_said_in_the_panel(
    client: seqnb.Client, emu: EmulatorServer
) -> None:
    sent: list[Any] = []
    panel = edit_panel(client, sent)
    panel.uploads.button.value = upload(("mug.png", encoded(Image.new("RGB", (48, 48), (200, 40, 40)))))
    (kept,) = panel.uploads.stand_ins
    stand_in = StandIn.parse(kept)
    assert stand_in is not None and panel.check().ok
    cached = client.references.cache.find(kept, stand_in.sha256)
    assert cached is not None
    cached.path.unlink()  # the image cache emptied between the upload and the click
    panel.submit_button.click()
    said = panel.message.value
    assert "references" in said and "no longer in the image cache" in said and "give the image again" in said
    assert sent == [] and emu.counters.submits == 0 and client.runs() == []
    panel.close()
