"""Reference series on the emulator: local images sent inline as RunComfy's tools send them, recorded without their
bytes; every bad reference refused before the submit; a reference sweep end to end."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import seqnb
from seqnb import ImageCache, RequestInvalid
from seqnb.emulator import EmulatorServer
from seqnb.images.scoring import reference_similarity
from seqnb.model.references import StandIn
from seqnb.testing import emulator
from tests.file_host import FileHost, Served

FOX = "Generate 2 images of a fox"
FAST = {"queue_wait": 0.0, "service_time": 0.05}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with emulator(**FAST) as server:
        yield server


def client_of(emu: EmulatorServer, tmp_path: Path, host: FileHost | None = None, **kw: object) -> seqnb.Client:
    allow = [host.netloc, "127.0.0.1:9"] if host else []
    cache = ImageCache(tmp_path / "images", allow_hosts=allow, retries=1)
    return seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "ledger.sqlite", download=cache, **kw)


def test_every_reference_problem_is_refused_before_the_submit(
    emu: EmulatorServer, host: FileHost, tmp_path: Path
) -> None:
    host.routes["/page"] = Served(b"<html>a page about a cat</html>", "text/html", 200)
    host.routes["/huge.png"] = Served(png((9, 9, 9)), "image/png", 200, length=60 * 2**20)
    host.routes["/slow.png"] = Served(png((9, 9, 9)), "image/png", 200, delay=3.0)
    host.routes["/ok.png"] = Served(png((200, 30, 30)), "image/png", 200)
    cases = {
        "https://img.example/cat.png": "private browser window",  # no such host: unreachable
        "http://127.0.0.1:9/cat.png": "private browser window",  # allowed, but nothing listens there
        "http://127.0.0.1:1/cat.png": "allow the host",  # loopback and not allowed: blocked
        host.url + "/page": "not a page",
        host.url + "/huge.png": "under 50 MB",
        host.url + "/slow.png": "reference_deadline",
        "http://img.example/cat.png": "https",  # plain http to a public host
    }
    client = client_of(emu, tmp_path, host, reference_deadline=1.0)
    try:
        for url, fix in cases.items():
            with pytest.raises(RequestInvalid) as info:  # at submit (rules), or before the POST (fetched)
                client.submit("seedream-4.5-edit", FOX, count=2, references=[host.url + "/ok.png", url]).accepted(30)
            assert url in str(info.value) and fix in str(info.value), (url, str(info.value))
        with pytest.raises(RequestInvalid, match="at most 10"):
            client.submit("seedream-4.0-edit", FOX, count=2, references=[host.url + "/ok.png"] * 11)
        with pytest.raises(RequestInvalid, match="at most 15 in all"):
            client.submit("seedream-4.5-edit", FOX, count=2, references=[host.url + "/ok.png"] * 14)
        assert emu.counters.submits == 0 and emu.counters.submits_rejected == 0  # nothing reached the service
        runs = client.ledger.runs() if client.ledger else None
        assert runs is not None and set(runs["status"]) == {"failed"}  # the fetched ones: recorded, never sent
        assert all(e.startswith("not sent") for e in runs["error"])
    finally:
        client.close()


def test_the_async_client_refuses_a_bad_reference_before_the_submit(emu: EmulatorServer, tmp_path: Path) -> None:
    async def go() -> None:
        client = seqnb.AsyncClient(emu.token, emu.base_url)
        gone = emu.base_url.removesuffix("/v1") + "/files/nothing.png"
        sent = await client.submit(seqnb.Request("4.0-edit", FOX, count=2, references=[gone]))
        with pytest.raises(RequestInvalid, match=r"nothing\.png is gone"):
            await sent.accepted(timeout=30)
        (run,) = client.runs()
        assert run.status == "failed" and run.error is not None and run.error.startswith("not sent")
        await client.aclose()

    asyncio.run(go())
    assert emu.counters.submits == 0


def test_a_reference_sweep_end_to_end(emu: EmulatorServer, tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    red.write_bytes(png((220, 30, 30)))
    blue.write_bytes(png((30, 60, 220)))
    client = client_of(emu, tmp_path)
    try:
        sweep = client.sweep(
            prompts=[FOX], models=["seedream-4.5-edit"], references=[[str(red)], [str(blue)]], seeds=[1], quiet=True
        )
        client.wait_all(sweep, timeout=30)
        client.settle(30)
        assert [r.status for r in sweep] == ["completed", "completed"]
        urls = [r.request.references for r in sweep]
        assert all(len(u) == 1 and StandIn.parse(u[0]) is not None for u in urls)  # sent inline, kept as stand-ins

        gallery = client.gallery
        assert gallery is not None
        own = [gallery.reference_similarity(r) for r in sweep]
        assert all(len(s) == 2 and all(v is not None for v in s) for s in own)
        red_frames = [f.image.path for f in gallery.frames(sweep[0]) if f.image]
        blue_ref = [f.image.path for f in gallery.references(sweep[1]) if f.image]
        crossed = reference_similarity(red_frames, blue_ref)
        assert min(v for v in own[0] if v is not None) > max(crossed)  # frames look like their own references
        assert gallery.most_drifting(sweep[0]) in (0, 1)

        saved = gallery.save(sweep[0], tmp_path / "out")
        with Image.open(saved[0]) as img:
            meta = json.loads(img.info["seqnb"])
            assert meta["references"] == list(urls[0]) and urls[0][0] in img.info["parameters"]

        assert client.ledger is not None
        rows = client.ledger.runs().set_index("id")
        assert [json.loads(rows.loc[r.id, "reference_urls"]) for r in sweep] == [list(u) for u in urls]

        box = seqnb.compare_grid(sweep)
        headers = [row.children[0].value for row in box.children[0].children]
        assert all("refs png 64x64 #" in h for h in headers) and headers[0] != headers[1]  # the rows say what differs
        first_row = box.children[0].children[0].children[1].children
        assert sum("seqnb-reference" in c._dom_classes for c in first_row) == 1
        frame_texts = [c.children[1].description for c in first_row if "seqnb-reference" not in c._dom_classes]
        assert sum("drifts most" in t for t in frame_texts) == 1 and all(" · ref 0." in t for t in frame_texts)
    finally:
        client.close()


def test_an_uploader_turns_local_files_into_urls_before_the_submit(
    emu: EmulatorServer, host: FileHost, tmp_path: Path
) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(png((40, 200, 40)))
    uploaded: list[Path] = []

    def uploader(path: Path) -> str:
        uploaded.append(path)
        host.routes["/u/" + path.name] = Served(path.read_bytes(), "image/png", 200)
        return f"{host.url}/u/{path.name}"

    client = client_of(emu, tmp_path, host, uploader=uploader)
    try:
        run = client.submit("seedream-4.0-edit", FOX, count=2, references=[str(picture)]).wait(30)
        assert uploaded == [picture] and run.request.references == (f"{host.url}/u/cat.png",)
        assert run.status == "completed" and "/u/cat.png" in host.hits
    finally:
        client.close()


def test_in_jupyter_the_check_runs_in_the_background_and_fails_the_run_not_sent(emu: EmulatorServer) -> None:
    async def go() -> None:  # a client on the caller's running loop, as in a Jupyter kernel: nothing may block
        client = seqnb.Client(emu.token, emu.base_url)
        gone = emu.base_url.removesuffix("/v1") + "/files/nothing.png"
        run = client.submit("seedream-4.5-edit", FOX, count=2, references=[gone])
        await asyncio.wait_for(run.aio.wait(), 30)
        assert run.status == "failed" and run.error is not None and "nothing.png is gone" in run.error
        await client.aio.aclose()

    asyncio.run(go())
    assert emu.counters.submits == 0


def test_a_flat_list_of_references_is_one_set_in_a_sweep_as_in_its_plan(emu: EmulatorServer, tmp_path: Path) -> None:
    """``references=[a, b]`` is one set of two (as ``plan`` reads it), local files uploaded or not: one run, not two."""
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    red.write_bytes(png((220, 30, 30)))
    blue.write_bytes(png((30, 60, 220)))
    client = client_of(emu, tmp_path)
    try:
        refs = [str(red), str(blue)]
        assert client.plan(prompts=[FOX], models=["seedream-4.5-edit"], references=refs).runs == 1
        sweep = client.sweep(prompts=[FOX], models=["seedream-4.5-edit"], references=refs, seeds=[1], quiet=True)
        assert len(sweep) == 1 and len(sweep[0].request.references) == 2
    finally:
        client.close()
