"""Compose with references: the box shows for edit-sequential models, its URLs reach the request, thumbnails load."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.images.cache import ImageCache
from seqnb.ui.request_panel import RequestPanel


@pytest.fixture
def client(emu: EmulatorServer, tmp_path: Path) -> Iterator[seqnb.Client]:
    c = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    yield c
    c.close()


def uploaded(emu: EmulatorServer, colour: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buf, format="PNG")
    headers = {"content-type": "image/png", "Authorization": f"Bearer {emu.control_token}"}
    r = httpx.post(f"{emu.base_url}/files", content=buf.getvalue(), headers=headers)
    return str(r.json()["url"])


def test_references_box_follows_the_model_and_shows_thumbnails(client: seqnb.Client, emu: EmulatorServer) -> None:
    panel = RequestPanel(client)
    assert panel.model.value == "seedream-4.5" and panel.reference_box.layout.display == "none"
    panel.model.value = "seedream-4.5-edit"
    assert panel.reference_box.layout.display == ""
    assert "references" in " ".join(p.field for p in panel.check().errors)  # required, and none given yet
    red, blue = uploaded(emu, (220, 30, 30)), uploaded(emu, (30, 30, 220))
    gone = emu.base_url + "/files/nothing.png"
    panel.references.value = f"{red}\n\n{blue}\n{gone}\n"
    assert panel.request().references == (red, blue, gone) and panel.check().ok
    client._run(panel.load_references(), timeout=30)
    thumbs = panel.reference_thumbs.value
    assert thumbs.count("<img ") == 2 and "nothing.png is gone" in thumbs
    panel.references.value = red
    run = panel.submit()
    assert run is not None and run.wait(30).status == "completed" and run.request.references == (red,)
    panel.close()
