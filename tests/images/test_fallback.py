"""Saved notebooks keep the images: every grid, the ledger view and the Studio carry static HTML in their output."""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.images.fallback import STATIC_MAX_ENV, static_max_bytes

HOSTILE = 'Generate 3 images of a boat </script><img src=x onerror=alert(1)> "><b>'
DATA_IMG = re.compile(r'<img src="data:image/(jpeg|png|webp);base64,([A-Za-z0-9+/=]+)" width="(\d+)" height="(\d+)"')


def embedded(markup: str) -> list[Image.Image]:
    """Every image embedded in the markup, decoded, checked against the size its tag announces."""
    found = []
    for _, data, width, height in DATA_IMG.findall(markup):
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.load()
        assert image.size == (int(width), int(height))
        found.append(image)
    return found


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def sweep(client: seqnb.Client) -> list[seqnb.Run]:
    runs = client.sweep(prompts=[HOSTILE], seeds=[1, 2], models=["seedream-4.0"], quiet=True)
    client.wait_all(runs, timeout=30)
    client.settle()
    return runs


def test_a_grid_output_carries_its_thumbnails_and_labels_as_html(
    seqnb_client: seqnb.Client, seqnb_emulator: EmulatorServer, tmp_path: Path
) -> None:
    runs = sweep(seqnb_client)
    bundle = seqnb.compare_grid(runs, size=96)._repr_mimebundle_()
    assert bundle is not None
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live view stays first
    assert bundle["text/plain"] == "<seqnb grid: 2 run(s), 6 frame(s)>"
    page = bundle["text/html"]
    images = embedded(page)
    assert len(images) == 6 and all(i.size == (96, 54) for i in images)  # 2560x1440 frames, longer side 96
    assert page.count("<b>seed 1") == 1 and page.count("<b>seed 2") == 1 and "3/3 · seed 2" in page
    single = runs[0].grid(size=64)._repr_mimebundle_()
    assert single is not None and len(embedded(single["text/html"])) == 3
    assert "<script" not in page and "onerror=alert" not in page.replace("&lt;img src=x onerror=alert", "")
    assert "file:" not in page and str(tmp_path) not in page and seqnb_emulator.token not in page


def test_the_static_html_is_capped_with_a_note(seqnb_client: seqnb.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = sweep(seqnb_client)
    whole = seqnb.compare_grid(runs, size=96)._repr_mimebundle_()
    assert whole is not None and "not embedded" not in whole["text/html"]
    monkeypatch.setenv(STATIC_MAX_ENV, "6K")
    capped = seqnb.compare_grid(runs, size=96)._repr_mimebundle_()
    assert capped is not None
    page = capped["text/html"]
    kept = len(embedded(page))
    assert 0 < kept < 6 and len(page) <= 6 * 1024 + 400  # the note itself may pass the cap by a line
    assert f"{6 - kept} image(s) not embedded" in page and STATIC_MAX_ENV in page
    assert page.count("(not embedded)") == 6 - kept and "<b>seed 2" in page  # every label is still there
    monkeypatch.setenv(STATIC_MAX_ENV, "0")
    none = seqnb.compare_grid(runs, size=96)._repr_mimebundle_()
    assert none is not None and not embedded(none["text/html"]) and "6 image(s) not embedded" in none["text/html"]
    monkeypatch.setenv(STATIC_MAX_ENV, "lots")
    with pytest.raises(seqnb.SettingInvalid, match=r"\$SEQNB_STATIC_MAX_BYTES 'lots' is not a size"):
        static_max_bytes()
    assert "text/html" not in (seqnb.compare_grid(runs, size=96)._repr_mimebundle_() or {})  # the widget still shows


def test_the_ledger_view_and_the_studio_carry_a_static_summary(seqnb_client: seqnb.Client) -> None:
    from seqnb.ui.ledger_view import LedgerView
    from seqnb.ui.studio import Studio

    runs = sweep(seqnb_client)
    assert seqnb_client.ledger is not None
    view = LedgerView(seqnb_client.ledger, seqnb_client, seqnb_client.gallery)
    view.selection.value = tuple(value for _, value in view.selection.options)
    until(lambda: bool(view.compare_box.children) and hasattr(view.compare_box.children[0], "rows"))
    bundle = view._repr_mimebundle_()
    assert bundle is not None
    page = bundle["text/html"]
    assert "runs 1–2 of 2" in page and "simulated" in page and runs[0].id in page
    assert len(embedded(page)) == 6 and "&lt;/script&gt;" in page and "</script>" not in page
    studio = Studio(seqnb_client)
    studio.show_recent()
    summary = studio._repr_mimebundle_()
    assert summary is not None and summary["text/plain"].startswith("<seqnb.Studio offline emulator")
    assert "2 run(s) in this session: 2 completed" in summary["text/html"]
    assert len(embedded(summary["text/html"])) == 6
    studio.close()
    view.close()


def test_the_matrix_output_carries_its_page_as_html(seqnb_client: seqnb.Client) -> None:
    runs = seqnb_client.sweep(
        prompts=[HOSTILE, "Generate 3 images of a kite"], seeds=[1, 2], models=["seedream-4.0"], quiet=True
    )
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    view = seqnb.matrix(runs, rows="prompt", cols="seed")
    bundle = view._repr_mimebundle_()
    assert isinstance(bundle, tuple)  # anywidget's (data, metadata): the data gets the HTML
    data = bundle[0]
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    assert len(embedded(page)) == 4 * 3 and "seed 1" in page and "seed 2" in page
    assert "&lt;img src=x onerror" in page and "<img src=x" not in page and "4 series" in page
    view.close()


STRIP = re.compile(r"<table><tr>((?:<td><img [^>]*><br><small>[^<]*</small></td>)+)</tr></table>")


def test_the_matrix_copy_holds_every_table_its_marks_and_strips_in_order(
    seqnb_client: seqnb.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = seqnb_client.sweep(
        prompts=["Generate 3 images of a kite, in ink", "Generate 3 images of a kite, in oil"],
        seeds=[1, 2],
        models=["seedream-4.0", "seedream-4.5"],
        quiet=True,
    )
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    runs[0].pick()
    runs[0].rate(4)
    runs[0].rate(5, frame=2)
    runs[5].reject()
    view = seqnb.matrix(runs, rows="prompt", cols="seed", facet="model")
    assert view.snapshot["page"]["facet"] == 0  # the page shows one table; the copy holds both
    page = view._repr_mimebundle_()[0]["text/html"]
    assert "model: seedream-4.0" in page and "model: seedream-4.5" in page
    strips = STRIP.findall(page)
    assert len(strips) == 8  # every series, each one table row of frames: a strip never wraps 2 + 1
    for strip in strips:
        assert re.findall(r"<small>(\d)/3", strip) == ["1", "2", "3"]
    assert page.count("✔ picked") == 1 and page.count("✘ rejected") == 1 and page.count("★★★★☆") == 1
    assert "3/3 ★5" in page and "8 series in 2 tables (model), all 2 shown" in page
    sixteen_nine = [i.size for i in embedded(page) if i.size[0] != i.size[1]]
    assert len(sixteen_nine) == 12 and all(w > h for w, h in sixteen_nine)  # 4.0's 16:9 frames keep their shape
    monkeypatch.setenv(STATIC_MAX_ENV, f"{len(page) * 19 // 20}B")  # a little short for both tables at 96 pixels
    small = view._repr_mimebundle_()[0]["text/html"]
    images = embedded(small)
    assert len(images) == 24 and max(max(i.size) for i in images) < 96  # every frame, smaller thumbnails
    assert "not embedded" not in small and "left out" not in small and len(STRIP.findall(small)) == 8
    monkeypatch.setenv(STATIC_MAX_ENV, "3K")
    tiny = view._repr_mimebundle_()[0]["text/html"]
    assert "left out to keep this copy under 3.0 KiB: " in tiny and "seedream-4.5 (4 series)" in tiny
    assert "model: seedream-4.5" not in tiny and STATIC_MAX_ENV in tiny  # named, not drawn
    view.close()
