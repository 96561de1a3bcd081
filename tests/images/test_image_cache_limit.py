"""The image cache's size limit: least recently used first out, recency kept across restarts and processes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from seqnb import Gallery, ImageCache, ImageRefused
from seqnb.images.limit import parse_size
from seqnb.runs.run import RunCore

from .test_image_hostile import HostileHost, completed_run


@pytest.fixture
def hostile() -> Iterator[HostileHost]:
    host = HostileHost()
    yield host
    host.close()


def bmp(n: int) -> bytes:
    """An uncompressed image, so every one has exactly the same size."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (n % 256, (n * 7) % 256, (n * 13) % 256)).save(buf, format="BMP")
    return buf.getvalue()


SIZE = len(bmp(0))


def held(cache: ImageCache, *names: str) -> list[bool]:
    return [cache.lookup(f"mem://{name}") is not None for name in names]


def test_least_recently_used_images_go_first_and_the_limit_holds(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, max_total_bytes=3 * SIZE)
    for i, name in enumerate("abc"):
        cache.store(f"mem://{name}", bmp(i))
    assert cache.lookup("mem://a") is not None  # a is used again: b is now the least recently used
    cache.store("mem://d", bmp(3))
    assert held(cache, "b") == [False]
    assert cache.usage().bytes <= 3 * SIZE
    # A new session on the same directory knows what was used last (mtimes, not memory).
    again = ImageCache(tmp_path, max_total_bytes=3 * SIZE)
    assert again.lookup("mem://c") is not None  # order now: a, d, c
    again.store("mem://e", bmp(4))
    assert held(again, "a", "c", "d", "e") == [False, True, True, True]
    assert again.usage().files == 3


def test_thumbnails_count_and_are_evicted_too(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, max_total_bytes=3 * SIZE)
    a = cache.store("mem://a", bmp(1))
    thumb = cache.thumbnail(a, 16)
    usage = cache.usage()
    assert usage.files == 2 and usage.bytes == SIZE + thumb.stat().st_size
    for i, name in enumerate("bcd"):
        cache.store(f"mem://{name}", bmp(10 + i))
    assert not thumb.exists() and held(cache, "a") == [False]  # the two least recently used went
    assert cache.usage().bytes <= 3 * SIZE


def test_using_a_thumbnail_keeps_its_original(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, max_total_bytes=10 * SIZE)
    a = cache.store("mem://a", bmp(1))
    cache.thumbnail(a, 16)
    cache.store("mem://b", bmp(2))
    cache.thumbnail(a, 16)  # shown again: a and its thumbnail are now newer than b
    cache.prune(max_bytes=SIZE + 2000)
    assert held(cache, "a", "b") == [True, False]


def test_usage_and_prune_for_the_cache_command(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, max_total_bytes=100 * SIZE)
    assert cache.usage().files == 0 and cache.usage().oldest is None
    for i in range(4):
        cache.store(f"mem://{i}", bmp(i))
    usage = cache.usage()
    assert (usage.files, usage.bytes, usage.limit) == (4, 4 * SIZE, 100 * SIZE)
    assert usage.oldest is not None and usage.newest is not None and usage.oldest <= usage.newest
    lines = usage.lines()
    assert lines[0] == f"cache: {tmp_path}" and lines[1] == "files: 4" and f"{4 * SIZE:,} bytes" in lines[2]
    result = cache.prune(max_bytes=2 * SIZE)
    assert (result.removed, result.freed, result.usage.files) == (2, 2 * SIZE, 2)
    assert result.lines()[0] == f"removed 2 file(s), freed {2 * SIZE / 1024:.1f} KiB"
    assert held(cache, "0", "1", "2", "3") == [False, False, True, True]
    assert len(list((tmp_path / "urls").glob("*/*"))) == 2  # the index of evicted images is dropped too
    assert cache.prune(max_bytes=0).usage.bytes == 0


def test_the_limit_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ImageCache(tmp_path).max_total_bytes == 2 * 1024**3
    monkeypatch.setenv("SEQNB_CACHE_MAX_BYTES", "1.5G")
    assert ImageCache(tmp_path).max_total_bytes == int(1.5 * 1024**3)
    assert ImageCache(tmp_path, max_total_bytes=10).max_total_bytes == 10
    monkeypatch.setenv("SEQNB_CACHE_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match=r"\$SEQNB_CACHE_MAX_BYTES 'lots' is not a size"):
        ImageCache(tmp_path)
    assert [parse_size(t) for t in ("123", "2K", "500M", "1GiB", "1 t")] == [123, 2048, 500 * 1024**2, 1024**3, 1024**4]


def test_files_removed_under_the_cache_are_tolerated(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, max_total_bytes=2 * SIZE)
    a = cache.store("mem://a", bmp(1))
    a.path.unlink()  # another process evicted it
    assert cache.lookup("mem://a") is None
    cache.store("mem://b", bmp(2))
    cache.store("mem://c", bmp(3))
    cache.store("mem://d", bmp(4))
    assert cache.usage().files == 2 and cache.prune().removed == 0


def test_an_evicted_image_is_refetched_while_its_url_lives_then_expired(hostile: HostileHost, tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, allow_hosts=[hostile.netloc], retries=1)
    live, dead = hostile.url + "/good/0.png", hostile.url + "/gone.png"
    run: RunCore = completed_run([live, live.replace("/0.", "/1.")])
    gallery = Gallery(cache)
    assert [f.state for f in gallery.frames(run)] == ["cached", "cached"]
    assert cache.downloads == 2
    cache.prune(max_bytes=0)
    assert [f.state for f in gallery.frames(run)] == ["cached", "cached"]  # evicted under the gallery: refetched
    assert cache.downloads == 4
    assert gallery.sheet(run, size=32).width > 0
    # A URL that has expired since its image was evicted: a placeholder saying so.
    cache.store(dead, asyncio.run(cache.fetch(live)).path.read_bytes())
    cache.prune(max_bytes=0)
    with pytest.raises(ImageRefused) as info:
        asyncio.run(cache.fetch(dead))
    assert info.value.reason == "expired"


WRITER = textwrap.dedent(
    """
    import io, sys
    from PIL import Image
    from seqnb import ImageCache

    cache = ImageCache(sys.argv[1], max_total_bytes=int(sys.argv[2]))
    for i in range(int(sys.argv[3]), int(sys.argv[3]) + 40):
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), (i % 256, (i * 7) % 256, (i * 13) % 256)).save(buf, format="BMP")
        cache.store(f"mem://{i}", buf.getvalue())
        if i % 5 == 0:
            cache.prune()
    """
)


def test_two_processes_writing_and_evicting_do_not_corrupt_the_cache(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    limit = str(8 * SIZE)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), limit, str(start)], env=env, stderr=subprocess.PIPE
        )
        for start in (0, 20)  # 20 of their 40 images are the same ones
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    cache = ImageCache(tmp_path, max_total_bytes=8 * SIZE)
    objects = [p for p in (tmp_path / "objects").glob("*/*")]
    assert objects and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.stem for p in objects)
    assert not list(tmp_path.rglob(".tmp-*"))
    for i in range(60):
        image = cache.lookup(f"mem://{i}")
        assert image is None or image.path.read_bytes() == bmp(i)
    assert cache.prune().usage.bytes <= 8 * SIZE
