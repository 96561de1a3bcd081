"""Which service a client talks to: RunComfy's Model API or seqnb's emulator, the token, the base URL.

With a token (argument, ``RUNCOMFY_TOKEN`` or the RunComfy CLI's login), RunComfy's Model API at
the argument, ``RUNCOMFY_BASE_URL``, RunComfy CLI's ``RUNCOMFY_MODEL_API_BASE`` or
https://model-api.runcomfy.net; without one, the embedded emulator. The label is honest: the
emulator only when the server says it is seqnb's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from .. import errors
from .._http import AsyncClient
from .._loop import run_detached
from .._netaddr import is_local_address
from .auth import Secret, resolve_token

__all__ = [
    "DEFAULT_BASE_URL",
    "EMBEDDED",
    "EMULATOR_HEADER",
    "NO_TOKEN",
    "Backend",
    "checked_url",
    "configured_base_url",
    "is_seqnb_emulator",
    "resolve_backend",
]

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
EMBEDDED = "embedded emulator"
"""The token source of the embedded emulator (its own token, no RunComfy one)."""
NO_TOKEN = "none (local server)"
"""The token source when a local server is used without a token (a placeholder is sent, no token of the user's)."""


@dataclass(frozen=True)
class Backend:
    """Which service a client talks to. Never holds the token."""

    kind: str
    """``emulator`` (offline, local) or ``runcomfy``."""
    base_url: str
    token_source: str

    def __str__(self) -> str:
        if self.kind == "emulator":
            return f"offline emulator at {self.base_url} (no RunComfy token in use; nothing is charged)"
        return f"RunComfy Model API at {self.base_url} (token from {self.token_source})"

    @property
    def catalog_label(self) -> str:
        """Whose catalog a price came from, as its source says: ``emulator catalog`` or ``RunComfy catalog``."""
        return "emulator catalog" if self.kind == "emulator" else "RunComfy catalog"

    def account_source(self, account_base: str) -> str:
        """Whose balance is read at ``account_base``, as the balance says: the offline emulator or a RunComfy account."""
        return f"{'offline emulator' if self.kind == 'emulator' else 'RunComfy account'} at {account_base}"


def _api_base(url: str) -> str:
    url = url.rstrip("/")
    return url if urlsplit(url).path not in ("", "/") else url + "/v1"


EMULATOR_HEADER = "x-seqnb-emulator"
"""Every answer of seqnb's emulator carries this header (its value: seqnb's version)."""


def _is_local(url: str) -> bool:
    return is_local_address(urlsplit(url).hostname or "")


async def _says_emulator(root: str, timeout: float) -> bool:
    async with AsyncClient(timeout=timeout) as http:  # no token; the environment's proxies, as for API calls
        try:
            answer = await http.get(root)
        except httpx.HTTPError:
            return False
    return EMULATOR_HEADER in answer.headers


def is_seqnb_emulator(url: str, timeout: float = 3.0) -> bool:
    """Whether the server at ``url`` says it is seqnb's emulator (one unauthenticated GET of its root).

    ``SettingInvalid`` when the environment names a proxy the engine cannot use for it.
    """
    parts = urlsplit(url)
    root = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    return run_detached(lambda: _says_emulator(root, timeout), timeout + 2.0)


def checked_url(url: str, where: str, example: str = DEFAULT_BASE_URL) -> str:
    """``url`` when it is an http(s) URL with a host, else ``SettingInvalid`` naming ``where`` and an example."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises on a bad port)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a bad port, an unclosed [IPv6 bracket
        usable = False
    if not usable:
        raise errors.SettingInvalid(f"{where}: {url!r} is not an http(s) URL with a host; write e.g. {example}")
    return url.strip()


def configured_base_url() -> tuple[str, str] | None:
    """The Model API base from the environment, and the variable that names it: ``RUNCOMFY_BASE_URL``, else RunComfy
    CLI's ``RUNCOMFY_MODEL_API_BASE``."""
    for name in ("RUNCOMFY_BASE_URL", "RUNCOMFY_MODEL_API_BASE"):
        if os.environ.get(name):
            return os.environ[name], name
    return None


def resolve_backend(token: str | Secret | None, base_url: str | None) -> tuple[Backend, Secret, str]:
    """(backend, secret, API base URL) for the given or configured token and base URL.

    The backend is called the emulator only when the server says it is seqnb's emulator (or is
    the embedded one), never because its host is local: a tunnel to RunComfy on loopback is RunComfy.
    """
    secret = resolve_token(token)
    given = (base_url, "base_url") if base_url else configured_base_url()
    if secret is None and given is None:
        from ..emulator import embedded

        emu = embedded()
        return (
            Backend("emulator", emu.base_url, EMBEDDED),
            Secret(emu.token, EMBEDDED),
            emu.base_url + "/v1",
        )
    url = checked_url(*given) if given is not None else DEFAULT_BASE_URL
    if secret is None:
        if not _is_local(url):
            raise errors.AuthError(
                f"no RunComfy token for {url}: pass token=..., set RUNCOMFY_TOKEN, or run `runcomfy login`"
            )
        secret = Secret("local", NO_TOKEN)
    kind = "emulator" if _is_local(url) and is_seqnb_emulator(url) else "runcomfy"
    return Backend(kind, url.rstrip("/"), secret.source), secret, _api_base(url)
