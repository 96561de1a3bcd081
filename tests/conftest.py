from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from seqnb.emulator import EmulatorServer

M40 = "bytedance/seedream-4-0/sequential"
M45 = "bytedance/seedream-4-5/sequential"


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """seqnb.connect() records to $SEQNB_LEDGER and caches in $SEQNB_CACHE: keep tests out of the user's files."""
    monkeypatch.setenv("SEQNB_LEDGER", str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite"))
    monkeypatch.setenv("SEQNB_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def emu(seqnb_emulator: EmulatorServer) -> EmulatorServer:
    """The seqnb.testing plugin's fast emulator (jobs queue 0.05 s, run 0.1 s + 0.05 s per image)."""
    return seqnb_emulator


@pytest.fixture
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10) as client:
        yield client
