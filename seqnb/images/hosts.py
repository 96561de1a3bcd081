"""Where image downloads may go: public hosts only, unless a host is allowed; checked at every connection.

A result image URL is whatever the service (or a hostile host it redirects to) says it is. The
kernel fetching it must not become a way into the machine's own network: loopback services,
cloud metadata (169.254.169.254), the LAN. So every request the image client sends, redirect
hops included, goes through ``PublicOnlyTransport``, which

1. accepts only ``http``/``https`` URLs with a host and a port in 1..65535;
2. lets an allowed host through as is (``allow_hosts``, ``$SEQNB_ALLOW_IMAGE_HOSTS``, and the
   client's own base URL host, which serves the emulator's images);
3. for the images of a RunComfy run (``HostPolicy.runcomfy_only``), refuses any other host than
   RunComfy's own, as RunComfy's own tools do: ``https``, ``runcomfy.net`` or a name under it, port
   443, no user or password in the URL (``runcomfy_problem``);
4. otherwise judges every address of the host and refuses it if *any* is not public (loopback,
   link-local, private, unspecified, multicast, reserved, or one of those inside an IPv4-mapped,
   6to4 or NAT64 IPv6 address): an address written in the URL (in any spelling: ``2130706433``
   and ``127.1`` are judged as the address they mean) before anything else, a name where the
   engine's connections resolve it: ``CheckingResolver``, the resolver of its aiohttp pool, looks
   the name up once, judges every answer, and hands the engine exactly the addresses it checked.

The connection therefore goes only to an address that was checked, the ``Host`` header and the
TLS server name stay the URL's name (certificates are verified against it), and a DNS answer
that changes between the check and the connect (rebinding) cannot matter: there is no second
lookup.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from .._http import AioTransport, tls_context
from ..errors import SettingInvalid

__all__ = [
    "ALLOW_ENV",
    "RUNCOMFY_DOMAIN",
    "CheckingResolver",
    "HostBlocked",
    "HostPolicy",
    "InvalidImageURL",
    "PublicOnlyTransport",
    "address_problem",
    "host_entry",
    "runcomfy_problem",
    "system_resolve",
]

ALLOW_ENV = "SEQNB_ALLOW_IMAGE_HOSTS"
"""Comma-separated hosts (``name`` or ``name:port``) image downloads may reach besides the default ones: although
not public, or although not RunComfy's for a RunComfy run's images."""
RUNCOMFY_DOMAIN = "runcomfy.net"
"""The images of a RunComfy run come from this name or one under it (https, port 443), as RunComfy's own tools check."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostBlocked(Exception):
    """A URL's host is not public and not allowed (turned into ``ImageRefused(reason="blocked")``)."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(detail)


class InvalidImageURL(Exception):
    """A URL no download can be made from: bad scheme, no host, bad port (``ImageRefused(reason="invalid")``)."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(detail)


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """Any IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), then the address itself."""
    found: list[IPAddress] = []
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip in _NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [*found, ip]


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``, ...), or None if it is one."""
    for candidate in _embedded(ip):
        for kind, flag in (
            ("unspecified", candidate.is_unspecified),
            ("loopback", candidate.is_loopback),
            ("link-local", candidate.is_link_local),
            ("multicast", candidate.is_multicast),
            ("reserved", candidate.is_reserved),
            ("private", candidate.is_private),
            ("non-public", not candidate.is_global),
        ):
            if flag:
                return kind
    return None


def _entry(host: str, port: int | None) -> str:
    host = host.lower().rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def host_entry(url: str) -> str:
    """The ``host:port`` allow entry of a URL (``http://127.0.0.1:8000/v1`` -> ``127.0.0.1:8000``)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return _entry(parts.hostname or "", port)


def _normalise(entry: str, where: str = "allow_hosts") -> str:
    entry = entry.strip()
    url = entry if "://" in entry else "//" + entry  # a bare name:port keeps no port but the one it writes
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise SettingInvalid(
            f"{where}: {entry!r} has a bad port; write 'name' or 'name:port', e.g. files.lan,10.0.0.7:8080"
        ) from None
    if not parts.hostname:
        raise SettingInvalid(
            f"{where}: {entry!r} names no host; write 'name' or 'name:port', e.g. files.lan,10.0.0.7:8080"
        )
    return host_entry(url)


@dataclass(frozen=True)
class HostPolicy:
    """Hosts image downloads may reach besides the default ones: ``name`` (any port) or ``name:port``.

    ``runcomfy_only``: besides those, only RunComfy's own hosts (``runcomfy_problem``), for a RunComfy run's images.
    """

    allowed: frozenset[str] = frozenset()
    runcomfy_only: bool = False

    @classmethod
    def of(cls, hosts: Iterable[str] = (), *, env: bool = True) -> HostPolicy:
        """The given hosts, plus those of ``$SEQNB_ALLOW_IMAGE_HOSTS`` when ``env``."""
        allowed = {_normalise(e) for e in hosts}
        if env:
            allowed |= {_normalise(e, ALLOW_ENV) for e in os.environ.get(ALLOW_ENV, "").split(",") if e.strip()}
        return cls(frozenset(allowed))

    def including(self, hosts: Iterable[str]) -> HostPolicy:
        extra = frozenset(_normalise(h) for h in hosts)
        return self if extra <= self.allowed else dataclasses.replace(self, allowed=self.allowed | extra)

    def allows(self, host: str, port: int) -> bool:
        return _entry(host, None) in self.allowed or _entry(host, port) in self.allowed


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (first is the one connected to)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: httpx.URL) -> tuple[str, int]:
    """(host, port) of a URL a download may be made from; raises ``InvalidImageURL`` otherwise."""
    shown = str(url)
    if url.scheme not in ("http", "https"):
        raise InvalidImageURL(shown, f"has the unsupported scheme {url.scheme!r}: image URLs must be http(s) or data:")
    if not url.host:
        raise InvalidImageURL(shown, "names no host")
    port = url.port or (443 if url.scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise InvalidImageURL(shown, f"has the impossible port {port} (ports run from 1 to 65535)")
    return url.host, port


def runcomfy_problem(url: httpx.URL) -> str | None:
    """Why ``url`` is not one RunComfy's own tools download an output from, or None when it is."""
    host = url.host.lower().rstrip(".")
    if url.scheme != "https":
        return f"is {url.scheme}, not https"
    if url.userinfo:
        return "carries a user or password"
    if url.port not in (None, 443):
        return f"uses port {url.port}, not 443"
    if host != RUNCOMFY_DOMAIN and not host.endswith("." + RUNCOMFY_DOMAIN):
        return f"is on {host}, not under {RUNCOMFY_DOMAIN}"
    return None


def _literal(host: str) -> IPAddress | None:
    """The address a URL's host writes, in any spelling the C library reads (``127.1``, ``2130706433``), or None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _looks_numeric(host: str) -> bool:
    """Whether aiohttp takes ``host`` for an address (and connects to it without asking the resolver)."""
    return ":" in host or host.replace(".", "").isdigit()


Problem = Callable[[IPAddress], str | None]


def _judge(host: str, port: int, answers: Iterable[str], problem: Problem, url: str = "") -> None:
    """Raise ``HostBlocked`` if any of ``host``'s addresses is not public."""
    for answer in answers:
        ip = ipaddress.ip_address(answer.split("%", 1)[0])  # fe80::1%eth0: the scope is not part of it
        kind = problem(ip)
        if kind is not None:
            entry = _entry(host, port)
            said = "is" if str(ip) == host else f"resolves to {ip},"
            raise HostBlocked(
                url,
                f"host {host} {said} a {kind} address, and images are fetched from public hosts only. "
                f"If you trust it, allow it: ImageCache(allow_hosts=[{entry!r}]) or {ALLOW_ENV}={entry}",
            )


class CheckingResolver(AbstractResolver):
    """The resolver of the image engine's connections: each name looked up once, every answer judged, the checked ones used."""

    def __init__(self, policy: HostPolicy, resolve: Resolver, problem: Problem) -> None:
        self.policy = policy
        self._resolve = resolve
        self._problem = problem

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            answers = await self._resolve(host, port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot resolve {host!r}: {exc.strerror or exc}") from None
        if not answers:
            raise OSError(f"{host!r} resolves to no address")
        if not self.policy.allows(host, port):
            _judge(host, port, answers, self._problem)
        return [
            ResolveResult(
                hostname=host,
                host=address.split("%", 1)[0],
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in answers
        ]

    async def close(self) -> None:
        pass


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    """An httpx transport (seqnb's engine) that sends each request only to checked public addresses (or an allowed host).

    ``resolve`` and ``problem`` replace the system's resolver and the public-address rule (tests).
    Never a proxy: one would connect (and resolve) where this check cannot see.
    """

    def __init__(
        self, policy: HostPolicy, *, resolve: Resolver | None = None, problem: Problem = address_problem
    ) -> None:
        self.policy = policy
        self._problem = problem
        resolver = CheckingResolver(policy, resolve or system_resolve, problem)
        self._inner = AioTransport(verify=tls_context(trust_env=False), trust_env=False, resolver=lambda: resolver)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host, port = check_url(request.url)
        url = str(request.url)
        if self.policy.runcomfy_only and request.url.userinfo:  # never, not even from an allowed host
            raise HostBlocked(
                url,
                "carries a user or password: the images of a RunComfy run are downloaded without credentials, as "
                "RunComfy's own tools do",
            )
        outside = self.policy.runcomfy_only and not self.policy.allows(host, port)
        if outside and (why := runcomfy_problem(request.url)) is not None:
            entry = _entry(host, port)
            raise HostBlocked(
                url,
                f"{why}: the images of a RunComfy run are downloaded only from https hosts under {RUNCOMFY_DOMAIN} "
                "(port 443, no user or password in the URL), as RunComfy's own tools do. If RunComfy serves them "
                f"from {entry} now, allow it: ImageCache(allow_hosts=[{entry!r}]) or {ALLOW_ENV}={entry}",
            )
        if not self.policy.allows(host, port):
            literal = _literal(host)
            if literal is not None:  # connected to as written: judged here, there is no lookup to check
                _judge(host, port, [str(literal)], self._problem, url)
            elif _looks_numeric(host):
                raise InvalidImageURL(url, f"has the host {host!r}, which is neither a name nor an address")
        try:
            return await self._inner.handle_async_request(request)
        except HostBlocked as exc:  # from the resolver, which does not know the URL
            raise HostBlocked(url, exc.detail) from None

    async def aclose(self) -> None:
        await self._inner.aclose()
