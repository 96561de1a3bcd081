"""Every setting of docs/settings.md, given a bad value, raises ``seqnb.SettingInvalid`` naming it (issue #23)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import seqnb
from seqnb.api.account import account_base_for
from seqnb.api.backend import Backend
from seqnb.api.catalog.service import CatalogCache
from seqnb.images.fallback import static_max_bytes

SETTINGS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def documented() -> list[str]:
    """The variables of the table in docs/settings.md."""
    names = []
    for line in SETTINGS.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    return names


def client(tmp: Path) -> Any:
    return seqnb.Client()


def cache(tmp: Path) -> Any:
    return seqnb.ImageCache(tmp / "images")


def token_dir(tmp: Path, body: str) -> str:
    tmp.joinpath("runcomfy").mkdir(exist_ok=True)
    tmp.joinpath("runcomfy", "token.json").write_text(body)
    return str(tmp / "runcomfy")


# variable -> (bad value, or a function of tmp_path making one; what reads it; what the message must name)
BAD: dict[str, tuple[str | Callable[[Path], str], Callable[[Path], Any], str]] = {
    "RUNCOMFY_TOKEN": ("abc def", client, "RUNCOMFY_TOKEN"),
    "RUNCOMFY_CONFIG_DIR": (lambda tmp: token_dir(tmp, "not json"), client, "token.json"),
    "XDG_CONFIG_HOME": (lambda tmp: (token_dir(tmp, '["no token"]'), str(tmp))[1], client, "token.json"),
    "RUNCOMFY_BASE_URL": ("not a url", client, "RUNCOMFY_BASE_URL"),
    "RUNCOMFY_MODEL_API_BASE": ("ftp://example.org/v1", client, "RUNCOMFY_MODEL_API_BASE"),
    "RUNCOMFY_API_BASE": (
        "not a url",
        lambda tmp: account_base_for(Backend("runcomfy", "https://model-api.runcomfy.net", "argument")),
        "RUNCOMFY_API_BASE",
    ),
    "SEQNB_LEDGER": ("mysql://db/seqnb", lambda tmp: seqnb.Ledger(), "SEQNB_LEDGER"),
    "SEQNB_USER": ("alice@hub", lambda tmp: seqnb.connect(ledger=tmp / "l.sqlite", download=False), "SEQNB_USER"),
    "SEQNB_CACHE": (lambda tmp: str(tmp / "a-file"), lambda tmp: seqnb.ImageCache(), "SEQNB_CACHE"),
    "SEQNB_CACHE_MAX_BYTES": ("lots", cache, "SEQNB_CACHE_MAX_BYTES"),
    "SEQNB_ALLOW_IMAGE_HOSTS": ("::::", cache, "SEQNB_ALLOW_IMAGE_HOSTS"),
    "SEQNB_STATIC_MAX_BYTES": ("plenty", lambda tmp: static_max_bytes(), "SEQNB_STATIC_MAX_BYTES"),
    "SEQNB_CATALOG_CACHE": (lambda tmp: str(tmp), lambda tmp: CatalogCache(), "SEQNB_CATALOG_CACHE"),
    "SEQNB_PRICES": (
        "seedream-4.5",
        lambda tmp: seqnb.Request("seedream-4.5", "Generate 1 image of a cat", count=1).cost(),
        "SEQNB_PRICES",
    ),
}
ANY_VALUE = {"SEQNB_DEBUG": "any value turns the tracebacks on"}


def test_every_documented_setting_is_checked() -> None:
    names = documented()
    assert len(names) >= 14, names
    assert sorted(names) == sorted([*BAD, *ANY_VALUE])


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_setting_raises_setting_invalid(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for other in [*BAD, *ANY_VALUE]:
        monkeypatch.delenv(other, raising=False)
    (tmp_path / "a-file").write_text("not a folder")
    value, reads, names = BAD[name]
    monkeypatch.setenv(name, value(tmp_path) if callable(value) else value)
    with pytest.raises(seqnb.SettingInvalid) as raised:
        reads(tmp_path)
    message = str(raised.value)
    assert names in message and "\n" not in message, message
    assert "abc def" not in message  # a token is never shown, even a bad one
