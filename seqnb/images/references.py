"""Reference images checked before any money is spent: reachable in time, an image, at most 50 MB; local files uploaded.

A reference is fetched the way result images are (``ImageCache.fetch``: no token, public hosts
only unless allowed, every redirect hop checked), within a deadline of its own. Each problem is a
validation ``Problem`` on ``references`` that names the URL and the fix. The fetched references
stay in the image cache, so grids and scores use them without a second download.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .._http import AsyncClient
from ..api.auth import Secret
from ..errors import ImageRefused
from ..model.spec import MAX_REFERENCE_BYTES
from ..model.validation import Problem
from .cache import ImageCache
from .store import CachedImage

__all__ = ["Uploader", "check_references", "is_local", "upload_local", "upload_to_emulator"]

Uploader = Callable[[Path], str]
"""The user's ``uploader``: a local file's path -> a public https URL serving it (a presigned URL, say)."""

_FIXES = {
    "blocked": "use a public https URL, or allow the host (ImageCache(allow_hosts=[...]) or SEQNB_ALLOW_IMAGE_HOSTS)",
    "invalid": "give an https URL of the image file",
    "expired": "host the image again and pass its new URL",
    "unreachable": "check that the URL opens in a private browser window (the service fetches it without you)",
    "timeout": "host it somewhere faster, or allow more time with reference_deadline=",
    "not_an_image": "link the image file itself (PNG, JPEG, WebP), not a page about it",
    "bomb": "use a smaller image",
    "too_large": f"resize or recompress it under {MAX_REFERENCE_BYTES // 2**20} MB",
    "upload": "check the file and the uploader (it must return a public https URL serving the file)",
}


def _problem(url: str, detail: str, reason: str) -> Problem:
    fix = _FIXES.get(reason, "check the URL")
    return Problem("references", f"{url} {detail}: {fix}", code="type", wire="images")


def is_local(reference: str) -> bool:
    """Whether a reference names a local file (a path or ``file://``) rather than a URL."""
    return reference.startswith("file://") or ("://" not in reference and not reference.startswith("data:"))


def _path(reference: str) -> Path:
    return Path(reference.removeprefix("file://")).expanduser()


async def upload_to_emulator(root: str, path: Path, timeout: float = 30.0, token: Secret | None = None) -> str:
    """Upload a local image to the emulator's file route (``POST {root}/files``, with the client's ``token``, which
    the route needs); returns the URL serving it."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = await asyncio.to_thread(path.read_bytes)
    headers = {"content-type": kind}
    if token is not None:  # the emulator's own route, on the API's origin: the client's token goes there only
        headers["Authorization"] = f"Bearer {token.reveal()}"
    async with AsyncClient(timeout=timeout, trust_env=False) as http:
        response = await http.post(f"{root}/files", content=data, headers=headers)
    if response.status_code != 200:
        raise ValueError(f"the emulator refused {path} (HTTP {response.status_code}: {response.text[:200]})")
    return str(response.json()["url"])


async def upload_local(
    references: Sequence[str],
    uploader: Uploader | None,
    emulator_root: str | None,
    timeout: float = 30.0,
    token: Secret | None = None,
) -> tuple[list[str], list[Problem]]:
    """The references with each local file replaced by a URL serving it: the ``uploader``'s, else the emulator's."""
    out: list[str] = []
    problems: list[Problem] = []
    for ref in references:
        if not is_local(ref):
            out.append(ref)
            continue
        path = _path(ref)
        if not path.is_file():
            problems.append(_problem(ref, "is no file here", "invalid"))
            out.append(ref)
            continue
        try:
            if uploader is not None:
                url = await asyncio.wait_for(asyncio.to_thread(uploader, path), timeout)
            elif emulator_root is not None:
                url = await upload_to_emulator(emulator_root, path, timeout, token)
            else:
                problems.append(
                    Problem(
                        "references",
                        f"{ref} is a local file, and RunComfy takes public https URLs only: host it and pass "
                        "its URL, or give the client an uploader (Client(uploader=path -> public URL))",
                        code="not_https",
                        wire="images",
                    )
                )
                out.append(ref)
                continue
        except Exception as exc:  # the user's uploader, the emulator: either may fail in any way
            problems.append(_problem(ref, f"could not be uploaded ({type(exc).__name__}: {exc})", "upload"))
            out.append(ref)
            continue
        if not isinstance(url, str) or "://" not in url:
            problems.append(_problem(ref, f"was uploaded, but the uploader returned {url!r}, not a URL", "upload"))
            out.append(ref)
            continue
        out.append(url)
    return out, problems


async def _check_one(cache: ImageCache, url: str, allow: Iterable[str], deadline: float) -> CachedImage | Problem:
    try:
        async with asyncio.timeout(deadline):
            image = await cache.fetch(url, allow=allow)
    except ImageRefused as exc:
        detail = str(exc).partition(": ")[2] or str(exc)
        return _problem(url, detail, exc.reason)
    except TimeoutError:
        return _problem(url, f"did not arrive within the {deadline:g} s allowed for a reference", "timeout")
    if image.bytes > MAX_REFERENCE_BYTES:
        return _problem(url, f"is {image.bytes:,} bytes, over the {MAX_REFERENCE_BYTES:,}-byte limit", "too_large")
    return image


async def check_references(
    urls: Sequence[str], cache: ImageCache, *, allow: Iterable[str] = (), deadline: float = 30.0
) -> tuple[dict[str, CachedImage], dict[str, Problem]]:
    """Fetch every reference (each within ``deadline`` seconds): the images found, and the problem of each URL that failed."""
    unique = list(dict.fromkeys(urls))
    allowed = list(allow)
    results = await asyncio.gather(*(_check_one(cache, url, allowed, deadline) for url in unique))
    found = {url: r for url, r in zip(unique, results, strict=True) if isinstance(r, CachedImage)}
    return found, {url: r for url, r in zip(unique, results, strict=True) if isinstance(r, Problem)}
