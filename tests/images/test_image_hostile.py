"""Image downloads against a hostile host: every bad answer is a placeholder with its reason, nothing waits forever.

The host is a raw asyncio server on loopback (so it can misbehave at the byte level): a redirect
loop, a body dripped a byte at a time forever, HTML where an image should be, a declared length
of a terabyte, and good PNGs beside them.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

import seqnb
from seqnb import Gallery, ImageCache, ImageRefused
from seqnb.api.backend import Backend
from seqnb.emulator import EmulatorServer
from seqnb.ledger.facade import Ledger
from seqnb.runs.run import RunCore, RunEvent

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (40, 200, 200)]


def png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


class HostileHost:
    """A loopback HTTP/1.1 server (raw asyncio, one request per connection) with bad answers on purpose."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.host_headers: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.handlers: set[asyncio.Task[None]] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        self.netloc = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.netloc}"

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            line = (await reader.readline()).decode()
            headers = {}
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            target = line.split(" ")[1] if line.count(" ") >= 2 else "/"
            self.paths.append(target)
            self.host_headers.append(headers.get("host", ""))
            await self._answer(target, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()

    @staticmethod
    def _head(writer: asyncio.StreamWriter, status: str, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status}", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def _answer(self, target: str, writer: asyncio.StreamWriter) -> None:
        path = urlsplit(target).path
        if path.startswith("/good/"):
            body = png(COLOURS[int(path.split("/")[2].split(".")[0]) % len(COLOURS)])
            self._head(writer, "200 OK", {"Content-Type": "image/png", "Content-Length": str(len(body))})
            writer.write(body)
        elif path == "/loop":
            self._head(writer, "302 Found", {"Location": "/loop", "Content-Length": "0"})
        elif path == "/redirect":
            location = parse_qs(urlsplit(target).query)["to"][0]
            self._head(writer, "302 Found", {"Location": location, "Content-Length": "0"})
        elif path == "/drip.png":  # headers at once, then one byte at a time, forever
            self._head(writer, "200 OK", {"Content-Type": "image/png", "Content-Length": "1000000"})
            while True:
                writer.write(b"\x89")
                await writer.drain()
                await asyncio.sleep(0.05)
        elif path == "/page.png":
            self._head(writer, "200 OK", {"Content-Type": "text/html", "Content-Length": "20"})
            writer.write(b"<html>login</html>\r\n")
        elif path == "/huge.png":
            self._head(writer, "200 OK", {"Content-Type": "image/png", "Content-Length": str(10**12)})
            writer.write(b"\x89PNG")
        else:
            self._head(writer, "404 Not Found", {"Content-Length": "0"})
        await writer.drain()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for task in list(self.handlers):
                task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def hostile() -> Iterator[HostileHost]:
    host = HostileHost()
    yield host
    host.close()


def quick_cache(directory: Path, host: HostileHost, **kw: object) -> ImageCache:
    """A cache that trusts the hostile host's loopback address and gives up fast."""
    options: dict[str, object] = {"file_deadline": 1.0, "run_deadline": 20.0, "retries": 1, "timeout": 5.0}
    options.update(kw)
    return ImageCache(directory, allow_hosts=[host.netloc], **options)  # type: ignore[arg-type]


def test_every_bad_answer_is_a_refusal_with_its_reason_and_the_good_ones_are_kept(
    hostile: HostileHost, tmp_path: Path
) -> None:
    cache = quick_cache(tmp_path, hostile)
    closed_port = _closed_port()
    cases = {
        hostile.url + "/good/0.png": None,
        hostile.url + "/loop": "unreachable",
        hostile.url + "/drip.png": "timeout",
        hostile.url + "/page.png": "not_an_image",
        hostile.url + "/huge.png": "too_large",
        hostile.url + "/good/1.png": None,
        "http://127.0.0.1:99999/x.png": "invalid",  # a port no socket can have
        f"http://127.0.0.1:{closed_port}/x.png": "blocked",  # loopback, and not the allowed port
        "http://[::1/x.png": "invalid",
        "not a url at all": "invalid",
        "ftp://files.example/x.png": "invalid",
        hostile.url + "/redirect?to=ftp://files.example/x.png": "invalid",
        hostile.url + "/gone.png": "expired",
    }
    results = asyncio.run(cache.fetch_all(list(cases)))
    assert len(results) == len(cases)
    for (url, reason), result in zip(cases.items(), results, strict=True):
        if reason is None:
            assert not isinstance(result, ImageRefused), (url, result)
            assert result.path.exists() and (result.width, result.height) == (48, 32)
        else:
            assert isinstance(result, ImageRefused), url
            assert result.reason == reason, (url, str(result))
            assert result.url == url
    by_url = dict(zip(cases, results, strict=True))
    assert "redirect loop" in str(by_url[hostile.url + "/loop"])
    assert "1 s allowed for one image" in str(by_url[hostile.url + "/drip.png"])
    assert "65535" in str(by_url["http://127.0.0.1:99999/x.png"])
    assert "redirects to ftp://files.example/x.png" in str(
        by_url[hostile.url + "/redirect?to=ftp://files.example/x.png"]
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_unreachable_not_raised(hostile: HostileHost, tmp_path: Path) -> None:
    port = _closed_port()
    cache = ImageCache(tmp_path, allow_hosts=[f"127.0.0.1:{port}"], retries=2, file_deadline=5.0)
    with pytest.raises(ImageRefused) as info:
        asyncio.run(cache.fetch(f"http://127.0.0.1:{port}/x.png"))
    assert info.value.reason == "unreachable" and "ConnectError" in str(info.value)


def test_the_run_deadline_cuts_what_is_left_and_keeps_what_arrived(hostile: HostileHost, tmp_path: Path) -> None:
    cache = quick_cache(tmp_path, hostile, file_deadline=60.0, run_deadline=1.0, concurrency=2)
    urls = [
        hostile.url + "/good/0.png",
        hostile.url + "/drip.png",
        hostile.url + "/drip.png",
        hostile.url + "/good/2.png",
    ]
    first, drip, also_drip, queued = asyncio.run(cache.fetch_all(urls))  # returns: that is the point
    assert not isinstance(first, ImageRefused) and first.path.exists()
    for late in (drip, also_drip):
        assert isinstance(late, ImageRefused) and late.reason == "timeout" and "for one run" in str(late)
    # the fourth waited behind the two drips for a free slot; the deadline covers waiting too
    assert isinstance(queued, ImageRefused) and queued.reason == "timeout"


def completed_run(urls: list[str], count: int | None = None) -> RunCore:
    request = seqnb.Request(
        "seedream-4.0", f"Generate {count or len(urls)} images of a heron", count=count or len(urls), seed=3
    )
    return RunCore(request, status="completed", images=list(urls))


def test_one_run_with_three_good_and_two_bad_images_keeps_three_frames(hostile: HostileHost, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    urls = [
        hostile.url + "/good/0.png",
        hostile.url + "/drip.png",
        hostile.url + "/good/1.png",
        "http://169.254.169.254/latest/meta-data.png",
        hostile.url + "/good/2.png",
    ]
    run = completed_run(urls)
    ledger.record(run, Backend("runcomfy", "https://model-api.example", "test"))
    gallery = Gallery(quick_cache(tmp_path / "c", hostile), ledger)
    frames = gallery.frames(run)
    assert [f.state for f in frames] == ["cached", "timeout", "cached", "blocked", "cached"]
    assert [f.image is not None for f in frames] == [True, False, True, False, True]
    assert "allowed for one image" in frames[1].reason
    # a RunComfy run's images come from RunComfy's hosts only (and the allowed ones): this one is refused unasked
    assert "only from https hosts under runcomfy.net" in frames[3].reason
    assert "SEQNB_ALLOW_IMAGE_HOSTS=169.254.169.254:80" in frames[3].reason
    rows = ledger.images(run.id)
    assert list(rows["state"][[0, 2, 4]]) == ["cached"] * 3 and rows["path"][[0, 2, 4]].notna().all()
    assert rows["state"][1].startswith("timeout: took longer than") and rows["path"].isna()[1]
    assert rows["state"][3].startswith("blocked: is http, not https")
    assert gallery.score(run) is not None  # the three good frames are scored
    sheet = gallery.sheet(run, size=96)  # placeholders draw their reason; nothing raises
    assert sheet.width >= 5 * 96


def test_settle_returns_and_the_poller_carries_on_after_hostile_images(
    emu: EmulatorServer, hostile: HostileHost, tmp_path: Path
) -> None:
    cache = quick_cache(
        tmp_path / "c", hostile, file_deadline=3.0
    )  # the drip never ends; the good images, under load, do
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=cache)
    hostile_urls = [hostile.url + "/good/0.png", hostile.url + "/drip.png", hostile.url + "/loop", "http://[::1/x"]

    def the_service_answers_with_hostile_urls(event: RunEvent) -> None:
        # What the emulator cannot answer: image URLs on a hostile host (in place before the gallery's task runs).
        if event.new == "completed" and "heron" in (event.run.request.prompt or ""):
            event.run.images[:] = hostile_urls

    client.subscribe(the_service_answers_with_hostile_urls)
    bad = client.submit(seqnb.Request("seedream-4.0", "Generate 4 images of a heron", count=4, seed=1)).wait(30)
    client.settle(30)  # returns: the drip is cut by the file deadline
    assert client.gallery is not None and client.ledger is not None
    assert [f.state for f in client.gallery.frames(bad)] == ["cached", "timeout", "unreachable", "invalid"]
    assert list(client.ledger.images(bad.id)["state"].str.split(":").str[0]) == [
        "cached",
        "timeout",
        "unreachable",
        "invalid",
    ]
    assert client.gallery.errors == {}
    good = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a gull", count=2, seed=2)).wait(30)
    client.settle(30)
    assert [f.state for f in client.gallery.frames(good)] == ["cached", "cached"]  # the emulator's own host is allowed
    client.close()


def test_a_cache_that_cannot_be_written_gives_disk_placeholders(hostile: HostileHost, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    run = completed_run([hostile.url + "/good/0.png", hostile.url + "/good/1.png"])
    gallery = Gallery(quick_cache(blocker / "cache", hostile))  # ENOTDIR: the cache lies under a file
    frames = gallery.frames(run)
    assert [f.state for f in frames] == ["disk", "disk"]
    assert "ENOTDIR" in frames[0].reason and "SEQNB_CACHE" in frames[0].reason
    assert gallery.sheet(run, size=64).width >= 2 * 64


def test_a_full_disk_gives_disk_placeholders_and_loses_nothing_written(
    hostile: HostileHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    cache = quick_cache(tmp_path / "c", hostile)
    first = asyncio.run(cache.fetch(hostile.url + "/good/0.png"))  # written before the disk fills
    real_replace = os.replace

    def full(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if "/c/" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    run = completed_run([hostile.url + "/good/0.png", hostile.url + "/good/1.png", hostile.url + "/good/2.png"])
    ledger.record(run, Backend("runcomfy", "https://model-api.example", "test"))
    frames = Gallery(cache, ledger).frames(run)
    assert [f.state for f in frames] == ["cached", "disk", "disk"]
    assert frames[0].image == first
    assert "ENOSPC" in frames[1].reason
    assert list(ledger.images(run.id)["state"].str.split(":").str[0]) == ["cached", "disk", "disk"]
    assert not list((tmp_path / "c").rglob(".tmp-*"))  # no half-written files left behind


def test_a_failing_download_task_is_logged_and_kept_never_raised_into_the_poller(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    assert client.ledger is not None and client.gallery is not None

    def disk_full(*args: object, **kw: object) -> None:
        raise seqnb.LedgerError("the ledger cannot record: database or disk is full")

    with monkeypatch.context() as patched:  # what a full disk makes the real ledger say
        patched.setattr(client.ledger.image_rows, "_write", disk_full)
        first = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a crane", count=2, seed=1)).wait(30)
        client.settle(30)
        assert [f.state for f in client.gallery.frames(first)] == ["cached", "cached"]  # kept and shown all the same
        assert "images NOT YET IN THE LEDGER" in first.note and "disk is full" in (client.ledger.health() or "")
        assert "keeps the image rows" in caplog.text
    client.ledger.flush()  # the disk has room again: the kept rows go in
    assert list(client.ledger.images(first.id)["state"]) == ["cached", "cached"] and client.ledger.health() is None

    async def crash(*args: object, **kw: object) -> None:
        raise RuntimeError("a bug in the gallery")

    monkeypatch.setattr(client.gallery.cache, "fetch_all", crash)
    second = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a crane", count=2, seed=2)).wait(30)
    client.settle(30)
    assert client.gallery.errors[second.id] == "download failed: RuntimeError: a bug in the gallery"
    assert "images of run" in caplog.text and "a bug in the gallery" in caplog.text
    third = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a crane", count=2, seed=3)).wait(30)
    assert third.status == "completed"  # the poller carried on
    client.close()
