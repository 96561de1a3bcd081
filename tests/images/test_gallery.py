"""The gallery on emulator runs and a local file host: cache, refusals, grids, provenance, consistency."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

import seqnb
from seqnb import Gallery, ImageCache, ImageRefused
from seqnb.emulator import EmulatorServer, Faults
from seqnb.images.scoring import consistency
from seqnb.images.store import CachedImage
from seqnb.testing import emulator
from tests.file_host import FileHost, Served


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def fetch(cache: ImageCache, url: str) -> CachedImage:
    return asyncio.run(cache.fetch(url))


def test_download_is_verified_cached_and_tokenless(host: FileHost, tmp_path: Path) -> None:
    host.routes["/a.png"] = Served(png(), "image/png", 200)
    cache = ImageCache(tmp_path, allow_hosts=[host.netloc])
    image = fetch(cache, host.url + "/a.png")
    assert (image.width, image.height, image.format) == (64, 48, "png") and image.path.exists()
    assert image.path.parent.parent.name == "objects" and image.sha256 in image.path.name
    assert all("authorization" not in h for h in host.headers)
    again = fetch(ImageCache(tmp_path, allow_hosts=[host.netloc]), host.url + "/a.png")  # a new session, the same cache
    assert again == image and len(host.headers) == 1  # served from the cache: no second download


def test_refusals_are_clear(host: FileHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ImageCache(tmp_path, max_bytes=10_000, retries=1, allow_hosts=[host.netloc])
    host.routes["/page"] = Served(b"<html>login</html>", "text/html", 200)
    host.routes["/big.png"] = Served(png((400, 400)), "image/png", 200, length=999999999)
    host.routes["/liar.png"] = Served(b"not really a png", "image/png", 200)
    host.routes["/gone.png"] = Served(b"expired", "text/plain", 404)
    host.routes["/bomb.png"] = Served(png((100, 100)), "image/png", 200)
    cases = {"/page": "not_an_image", "/big.png": "too_large", "/liar.png": "not_an_image", "/gone.png": "expired"}
    for path, reason in cases.items():
        with pytest.raises(ImageRefused) as info:
            fetch(cache, host.url + path)
        assert info.value.reason == reason, path
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100 x 100 is now over twice the guard
    with pytest.raises(ImageRefused, match="decompression bomb"):
        fetch(cache, host.url + "/bomb.png")
    assert not (tmp_path / "objects").exists()  # nothing refused was kept


def test_data_uris_are_accepted(tmp_path: Path) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png((10, 20))).decode()
    assert fetch(ImageCache(tmp_path), uri).height == 20
    with pytest.raises(ImageRefused, match="base64"):
        fetch(ImageCache(tmp_path), "data:image/png;base64,@@@")


def test_runs_download_on_completion_into_the_ledger(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    run = client.submit(
        seqnb.Request("seedream-4.5", "Generate 3 images of a heron, widescreen", count=3, size="2K", seed=4)
    ).wait(30)
    assert client.gallery is not None and client.ledger is not None
    client.settle()
    images = client.ledger.images(run.id)
    assert list(images["idx"]) == [0, 1, 2] and set(images["state"]) == {"cached"}
    assert list(images["width"]) == [2560] * 3 and list(images["height"]) == [1440] * 3
    assert all(Path(p).exists() for p in images["path"]) and images["sha256"].str.len().eq(64).all()
    score = client.ledger.runs().loc[0, "consistency"]
    assert 0.5 < score <= 1.0
    assert client.gallery.cache.downloads == 3
    client.gallery.frames(run)  # already there: no new download
    assert client.gallery.cache.downloads == 3


def test_each_image_is_downloaded_once_whatever_asks_for_it_first(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    prompt = "Generate 4 images of a heron, widescreen"
    run = client.submit(seqnb.Request("seedream-4.5", prompt, count=4, size="2K", seed=4)).wait(30)
    run.grid(size=96)  # asked at once, while the download started at its completion is still going
    runs = client.sweep(prompts=[prompt], seeds=[5, 6], models=["seedream-4.5"], sizes=["2K"], quiet=True)
    client.wait_all(runs, timeout=30)
    seqnb.compare_grid(runs, size=96)
    client.settle()
    assert emu.counters.files_served == 12  # one GET per image: 4 + 2 x 4
    assert client.gallery is not None and client.gallery.cache.downloads == 12
    assert [f.state for f in client.gallery.frames(run)] == ["cached"] * 4
    client.close()


def test_grid_order_count_short_batches_and_missing_images(tmp_path: Path) -> None:
    with emulator(queue_wait=0, service_time=0.05, faults=Faults(short=1.0, seed=2)) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        short = client.submit(seqnb.Request("seedream-4.0", "Generate 5 images of a fox", count=5, seed=1)).wait(20)
        emu.set_faults(Faults(expire=1.0))
        expired = client.submit(seqnb.Request("seedream-4.0", "Generate 3 images of a fox", count=3, seed=2)).wait(20)
        gallery = Gallery(ImageCache(tmp_path / "c"), client.ledger)
        frames = gallery.frames(short)
        assert [f.index for f in frames] == [0, 1, 2, 3, 4]
        returned = len(short.images)
        assert [f.state for f in frames] == ["cached"] * returned + ["not_returned"] * (5 - returned)
        assert [f.state for f in gallery.frames(expired)] == ["expired"] * 3
        assert all("HTTP 404" in f.reason or "HTTP 410" in f.reason for f in gallery.frames(expired))
        assert client.ledger is not None
        assert all(s.startswith("expired: is gone (HTTP") for s in client.ledger.images(expired.id)["state"])
        sheet = gallery.sheet([short, expired], size=96)
        assert sheet.width >= 5 * 96 and sheet.height >= 2 * 96  # five columns, two rows, nothing crashed


def test_widget_grid_and_click_to_enlarge(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    runs = client.sweep(prompts=["Generate 3 images of a boat"], seeds=[1, 2], models=["seedream-4.0"], quiet=True)
    client.wait_all(runs, timeout=30)
    box = runs[0].grid(size=96)
    rows, caption, viewer = box.children
    assert len(rows.children) == 1
    header, strip = rows.children[0].children
    assert "2560:1440 (16:9)" in header.value and len(strip.children) == 3
    assert "colour/layout" not in header.value  # one series: its score separates nothing
    cells = strip.children
    assert [c.children[1].description.split(" ")[0] for c in cells] == ["1/3", "2/3", "3/3"]
    assert viewer.layout.display == "none"
    cells[1].children[1].click()  # the user clicks frame 2
    assert viewer.layout.display == "" and len(viewer.value) > 1000 and "2/3" in caption.value
    assert Image.open(io.BytesIO(viewer.value)).size[0] <= 1024
    compared = seqnb.compare_grid(runs, size=64).children[0]
    labels = [row.children[0].value for row in compared.children]
    assert len(labels) == 2 and "seed 1" in labels[0] and "seed 2" in labels[1] and "seedream" not in labels[0]
    assert [len(row.children[1].children) for row in compared.children] == [3, 3]  # frames aligned by index


def test_saved_files_carry_provenance_never_the_token(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    run = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a gull", count=2, seed=9)).wait(20)
    assert client.gallery is not None
    saved = client.gallery.save(run, tmp_path / "out")
    assert len(saved) == 2
    with Image.open(saved[1]) as img:
        meta = json.loads(img.text["seqnb"])
        assert "Seed: 9" in img.text["parameters"]
    assert meta["model"] == "bytedance/seedream-4-0/sequential" and meta["prompt"] == "Generate 2 images of a gull"
    assert meta["seed"] == 9 and meta["size"] == "2560:1440 (16:9)" and meta["frame"] == 1
    assert meta["request_id"] == run.request_id and meta["run_id"] == run.id
    rebuilt = seqnb.Request.from_payload(meta["model"], meta["payload"])  # found on disk months later: re-run it
    assert rebuilt == run.request
    sheet = seqnb.contact_sheet([run], tmp_path / "sheet.png")
    with Image.open(sheet) as img:
        assert json.loads(img.text["seqnb"])["runs"][0]["run_id"] == run.id
    blob = b"".join(p.read_bytes() for p in [*saved, sheet])
    assert emu.token.encode() not in blob


def test_consistency_is_deterministic_and_ranks_series(tmp_path: Path) -> None:
    from seqnb.emulator.images import render

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    series = [write(f"s{i}.jpg", render("m", "Generate 4 images of a kite", 3, 512, 288, i, 4)) for i in range(4)]
    rng = __import__("random").Random(1)
    noise = []
    for i in range(4):
        img = Image.frombytes("RGB", (64, 64), bytes(rng.randrange(256) for _ in range(64 * 64 * 3)))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        noise.append(write(f"n{i}.png", buf.getvalue()))
    mixed = [series[0], write("other.jpg", render("m", "Generate 4 images of a city", 99, 512, 288, 0, 4))]
    a = consistency(series)
    assert a == consistency(series)
    assert a is not None and a > 0.8
    assert a > (consistency(mixed) or 0) and a > (consistency(noise) or 0)
    assert consistency(series[:1]) is None
