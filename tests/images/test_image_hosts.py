"""Image downloads go to public hosts only: loopback, link-local, private (in any spelling) refused unless allowed."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seqnb import ImageCache, ImageRefused
from seqnb.images.hosts import (
    HostBlocked,
    HostPolicy,
    PublicOnlyTransport,
    address_problem,
    host_entry,
    runcomfy_problem,
)

from .test_image_hostile import HostileHost


@pytest.fixture
def hostile() -> Iterator[HostileHost]:
    host = HostileHost()
    yield host
    host.close()


def refusal(cache: ImageCache, url: str) -> ImageRefused:
    with pytest.raises(ImageRefused) as info:
        asyncio.run(cache.fetch(url))
    return info.value


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ],
)
def test_which_addresses_are_public(address: str, kind: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == kind


def test_loopback_in_every_spelling_is_refused_unless_allowed(hostile: HostileHost, tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, retries=1)
    port = hostile.port
    for host in ("127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1", "[::ffff:127.0.0.1]", "0.0.0.0"):
        refused = refusal(cache, f"http://{host}:{port}/good/0.png")
        assert refused.reason == "blocked", host
        assert "public hosts only" in str(refused) and "SEQNB_ALLOW_IMAGE_HOSTS=" in str(refused), host
    assert hostile.paths == []  # not one request reached the host
    allowed = ImageCache(tmp_path, allow_hosts=[f"127.0.0.1:{port}"])
    assert asyncio.run(allowed.fetch(f"http://127.0.0.1:{port}/good/0.png")).width == 48
    assert refusal(allowed, f"http://localhost:{port}/good/1.png").reason == "blocked"  # another name: not allowed


def test_the_message_says_how_to_allow_the_host(hostile: HostileHost, tmp_path: Path) -> None:
    refused = refusal(ImageCache(tmp_path), hostile.url + "/good/0.png")
    assert f"ImageCache(allow_hosts=['{hostile.netloc}'])" in str(refused)
    assert f"SEQNB_ALLOW_IMAGE_HOSTS={hostile.netloc}" in str(refused)


def test_link_local_and_private_hosts_are_refused(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, retries=1)
    for url in (
        "http://169.254.169.254/latest/meta-data/iam.png",
        "http://10.0.0.8/a.png",
        "https://192.168.1.20:8443/a.png",
        "http://[fe80::1]/a.png",
        "http://100.100.100.200/a.png",
    ):
        refused = refusal(cache, url)
        assert refused.reason == "blocked", url


def test_the_environment_and_a_bare_name_allow_hosts(
    hostile: HostileHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQNB_ALLOW_IMAGE_HOSTS", f"files.internal, localhost:{hostile.port}")
    cache = ImageCache(tmp_path)
    assert asyncio.run(cache.fetch(f"http://localhost:{hostile.port}/good/0.png")).height == 32
    assert HostPolicy.of(["127.0.0.1"], env=False).allows("127.0.0.1", 1234)  # a bare name: any port
    assert not HostPolicy.of(["127.0.0.1:80"], env=False).allows("127.0.0.1", 1234)
    with pytest.raises(ValueError, match="name:port"):
        HostPolicy.of(["files.internal:http"], env=False)
    assert (
        host_entry("http://127.0.0.1:8000/v1") == "127.0.0.1:8000"
        and host_entry("https://Api.Example/") == "api.example:443"
    )


def test_redirects_are_checked_at_every_hop(hostile: HostileHost, tmp_path: Path) -> None:
    # The host is allowed by one name; a redirect to its loopback address by another is not.
    cache = ImageCache(tmp_path, allow_hosts=[f"localhost:{hostile.port}"], retries=1)
    start = f"http://localhost:{hostile.port}/redirect?to="
    for target, kind in (
        (f"http://127.0.0.1:{hostile.port}/good/0.png", "loopback"),
        ("http://169.254.169.254/latest/meta-data.png", "link-local"),
        (f"http://[::ffff:127.0.0.1]:{hostile.port}/good/0.png", "loopback"),
        (f"http://2130706433:{hostile.port}/good/0.png", "loopback"),
    ):
        refused = refusal(cache, start + target)
        assert refused.reason == "blocked", target
        assert f"redirects to {target}" in str(refused) and kind in str(refused), str(refused)
    assert not any(p.startswith("/good/") for p in hostile.paths)  # the redirects were never followed
    ok = asyncio.run(cache.fetch(start + f"http://localhost:{hostile.port}/good/1.png"))  # an allowed hop is fine
    assert ok.width == 48


def test_a_host_is_refused_if_any_of_its_addresses_is_not_public() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]  # a public answer with a private one behind it

    async def go() -> None:
        async with httpx.AsyncClient(transport=PublicOnlyTransport(HostPolicy(), resolve=resolve)) as http:
            with pytest.raises(HostBlocked, match=r"resolves to 10\.0\.0\.7, a private address"):
                await http.get("http://images.example/a.png")

    asyncio.run(go())


def test_the_connection_goes_to_the_address_that_was_checked(hostile: HostileHost) -> None:
    """Resolved once, checked, and connected to: no second lookup a rebinding DNS could answer differently."""
    lookups: list[str] = []
    checked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]  # images.example cannot resolve here: only the checked address can be reached

    def problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        checked.append(str(ip))
        return None  # for this test, loopback counts as public

    async def go() -> httpx.Response:
        transport = PublicOnlyTransport(HostPolicy(), resolve=resolve, problem=problem)
        async with httpx.AsyncClient(transport=transport) as http:
            return await http.get(f"http://images.example:{hostile.port}/good/0.png")

    response = asyncio.run(go())
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert lookups == ["images.example"] and checked == ["127.0.0.1"]
    assert hostile.host_headers == [f"images.example:{hostile.port}"]  # the name still goes in Host
    assert str(response.request.url) == f"http://images.example:{hostile.port}/good/0.png"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://runcomfy.net/a.png", None),
        ("https://cdn.runcomfy.net/outputs/a.png", None),
        ("https://cdn.runcomfy.net:443/a.png", None),
        ("https://CDN.RunComfy.net./a.png", None),
        ("http://cdn.runcomfy.net/a.png", "is http, not https"),
        ("https://cdn.runcomfy.net:8443/a.png", "uses port 8443, not 443"),
        ("https://user:pw@cdn.runcomfy.net/a.png", "carries a user or password"),
        ("https://evilruncomfy.net/a.png", "is on evilruncomfy.net, not under runcomfy.net"),
        ("https://runcomfy.net.example/a.png", "not under runcomfy.net"),
        ("https://images.example/a.png", "not under runcomfy.net"),
    ],
)
def test_runcomfys_own_output_hosts_as_its_tools_judge_them(url: str, why: str | None) -> None:
    found = runcomfy_problem(httpx.URL(url))
    assert (found is None) == (why is None) and (why is None or why in (found or ""))


def test_a_runcomfy_runs_images_come_only_from_runcomfys_hosts_unless_allowed(
    hostile: HostileHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As RunComfy's own tools: https under runcomfy.net, port 443, no credentials; every redirect hop alike."""
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.215.14"]

    async def refused(url: str, policy: HostPolicy) -> str:
        async with httpx.AsyncClient(transport=PublicOnlyTransport(policy, resolve=resolve)) as http:
            with pytest.raises(HostBlocked) as info:
                await http.get(url)
        return info.value.detail

    only = HostPolicy(runcomfy_only=True)
    said = asyncio.run(refused("https://images.example/a.png", only))
    assert "not under runcomfy.net" in said and "SEQNB_ALLOW_IMAGE_HOSTS=images.example:443" in said
    assert "is http, not https" in asyncio.run(refused("http://cdn.runcomfy.net/a.png", only))
    assert lookups == []  # refused before any name was looked up

    cache = ImageCache(tmp_path, allow_hosts=[f"localhost:{hostile.port}"], retries=1)
    start = f"http://localhost:{hostile.port}"
    ok = asyncio.run(cache.fetch_all([start + "/good/0.png"], runcomfy_only=True))  # an allowed host: widened
    assert [getattr(r, "width", None) for r in ok] == [48]
    (hop,) = asyncio.run(cache.fetch_all([start + "/redirect?to=https://images.example/b.png"], runcomfy_only=True))
    assert isinstance(hop, ImageRefused) and hop.reason == "blocked"
    assert "redirects to https://images.example/b.png" in str(hop) and "runcomfy.net" in str(hop)
    (creds,) = asyncio.run(cache.fetch_all([f"http://u:pw@localhost:{hostile.port}/good/3.png"], runcomfy_only=True))
    assert isinstance(creds, ImageRefused) and "carries a user or password" in str(creds)  # even from an allowed host
    hostile.paths.clear()  # a redirect is never followed, not even to an allowed host, as RunComfy's tools do
    (same,) = asyncio.run(cache.fetch_all([start + f"/redirect?to={start}/good/2.png"], runcomfy_only=True))
    assert isinstance(same, ImageRefused) and same.reason == "blocked" and "without following redirects" in str(same)
    assert [p.split("?")[0] for p in hostile.paths] == ["/redirect"]
    (other,) = asyncio.run(cache.fetch_all([f"http://127.0.0.1:{hostile.port}/good/1.png"], runcomfy_only=True))
    assert isinstance(other, ImageRefused) and "runcomfy.net" in str(other)
    monkeypatch.setenv("SEQNB_ALLOW_IMAGE_HOSTS", f"127.0.0.1:{hostile.port}")  # the setting widens the list
    (widened,) = asyncio.run(
        ImageCache(tmp_path / "2").fetch_all([f"http://127.0.0.1:{hostile.port}/good/1.png"], runcomfy_only=True)
    )
    assert not isinstance(widened, ImageRefused) and widened.width == 48
