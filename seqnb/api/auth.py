"""The API token: where it comes from, and a type that never shows it.

Precedence, as RunComfy's own CLI: the ``token=`` argument, then ``RUNCOMFY_TOKEN``, then the
``access_token`` of the ``token.json`` that ``runcomfy login`` writes, in ``$RUNCOMFY_CONFIG_DIR``,
else ``$XDG_CONFIG_HOME/runcomfy/``, else ``~/.config/runcomfy/``.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ..errors import SettingInvalid

__all__ = ["Secret", "resolve_token", "same_origin", "token_file"]


class Secret:
    """A token. Its repr and str are masked, it refuses pickling, and ``reveal()`` is the only way in."""

    __slots__ = ("_value", "source")
    _value: str
    source: str

    def __init__(self, value: str, source: str = "argument") -> None:
        value = value.strip()
        if not value:
            raise ValueError("the token is empty")
        if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
            raise SettingInvalid(
                f"the token from {source} holds a space, a line break or a character no HTTP header can carry: "
                "copy it again from your RunComfy profile, alone (it is never shown)"
            )
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "source", source)

    def reveal(self) -> str:
        return str(self._value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('********', source={self.source!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self.reveal(), other.reveal())

    def __hash__(self) -> int:
        return hash(("Secret", self.source))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a seqnb Secret cannot be pickled: tokens never leave the process")

    def __getstate__(self) -> NoReturn:
        raise TypeError("a seqnb Secret cannot be pickled: tokens never leave the process")


def token_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``runcomfy login`` keeps its token."""
    env = os.environ if environ is None else environ
    if env.get("RUNCOMFY_CONFIG_DIR"):
        return Path(env["RUNCOMFY_CONFIG_DIR"]) / "token.json"
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "runcomfy" / "token.json"
    return Path(env.get("HOME", str(Path.home()))) / ".config" / "runcomfy" / "token.json"


def resolve_token(token: str | Secret | None = None, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The token to use, or None when none is configured anywhere."""
    if isinstance(token, Secret):
        return token
    if token is not None and token.strip():
        return Secret(token, "argument")
    env = os.environ if environ is None else environ
    if env.get("RUNCOMFY_TOKEN", "").strip():
        return Secret(env["RUNCOMFY_TOKEN"], "RUNCOMFY_TOKEN")
    path = token_file(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SettingInvalid(
            f"{path}: cannot read the token `runcomfy login` saved ({exc}); run `runcomfy login` again"
        ) from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    value = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise SettingInvalid(
            f'{path}: not a token file like {{"access_token": "..."}}; run `runcomfy login` again, or set '
            "RUNCOMFY_CONFIG_DIR to the folder of a good one"
        )
    return Secret(value, "runcomfy login")


def same_origin(url: str, origin: str) -> bool:
    """Whether ``url`` is on ``origin``'s scheme, host and port (the scheme's default port made explicit):
    where the token may go.
    """
    return _origin(url) == _origin(origin)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return ("", "", None)  # no origin the API's can equal
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").rstrip("."), port if port is not None else default
