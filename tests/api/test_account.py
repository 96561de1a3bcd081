"""The balance over real HTTP: read with its source, going down as runs complete, and a sweep refused over it."""

from __future__ import annotations

import asyncio
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import seqnb
from seqnb.api.account import (
    DEFAULT_ACCOUNT_BASE,
    Balance,
    account_base_for,
    balance_secret,
    balance_text,
    parse_balance,
)
from seqnb.api.auth import Secret
from seqnb.api.backend import Backend
from seqnb.client.core import AsyncClient
from seqnb.client.money import BalanceUnchecked
from seqnb.errors import ConnectError
from seqnb.testing import FAST, emulator

FOX2 = "Generate 2 images of a fox"


def connected(emu: Any, tmp_path: Path, **kw: Any) -> seqnb.Client:
    return seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "ledger.sqlite", download=False, **kw)


def test_the_balance_is_read_with_its_source_and_goes_down_as_runs_complete(tmp_path: Path) -> None:
    with emulator(**FAST, balance="1.00") as emu:
        client = connected(emu, tmp_path)
        before = client.balance()
        assert (before.amount, before.currency) == (Decimal("1.0"), "USD")
        assert before.source == f"offline emulator at {emu.base_url}" and time.time() - before.fetched_at < 60
        assert str(before) == "USD 1.00" and before.describe().startswith("USD 1.00 (offline emulator at http")
        client.submit(seqnb.Request("seedream-4.5", FOX2, count=2, seed=1)).wait(30)
        after = asyncio.run(_async_balance(emu))
        assert after.amount == Decimal("0.92")  # 2 images at USD 0.04
        assert client.aio.last_balance == before
        client.close()


async def _async_balance(emu: Any) -> Balance:
    client = AsyncClient(emu.token, emu.base_url)
    try:
        return await client.balance()
    finally:
        await client.aclose()


def test_a_sweep_over_the_balance_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    with emulator(**FAST, balance="0.10") as emu:
        client = connected(emu, tmp_path)
        with pytest.raises(seqnb.InsufficientBalance) as refused:
            client.sweep(prompts=[FOX2], seeds=[1, 2, 3], quiet=True)  # 6 images: USD 0.24
        message = str(refused.value)
        assert "estimated USD 0.24" in message and "balance of USD 0.10" in message
        assert "allow_over_balance=True" in message
        assert emu.counters.submits == 0 and client.runs() == []
        assert client.ledger is not None and client.ledger.count() == 0
        # within the balance: sent
        runs = client.sweep(prompts=[FOX2], seeds=[4], quiet=True)
        client.wait_all(runs, timeout=30)
        assert [r.status for r in runs] == ["completed"]
        client.close()


def test_the_override_sends_it_anyway_and_the_service_refuses_what_it_cannot_charge(tmp_path: Path) -> None:
    with emulator(**FAST, balance="0.10") as emu:
        client = connected(emu, tmp_path)
        runs = client.sweep(prompts=[FOX2], seeds=[1, 2], quiet=True, allow_over_balance=True, concurrency=1)
        client.wait_all(runs, timeout=30)
        assert sorted(r.status for r in runs) == ["completed", "failed"]
        failed = next(r for r in runs if r.status == "failed")
        assert "not charged" in (failed.error or "") and emu.counters.submits == 1
        client.close()


def test_a_balance_that_cannot_be_read_is_said_and_does_not_stop_the_sweep(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with emulator(**FAST) as emu:
        client = connected(emu, tmp_path, account_base_url=closed)
        assert client.aio._money.account_base == closed
        with pytest.raises(ConnectError):
            client.balance()
        with pytest.warns(BalanceUnchecked, match="without a balance check") as said:
            runs = client.sweep(prompts=[FOX2], seeds=[1], quiet=True)
        assert said[0].filename == __file__  # the warning points at the user's line, not into seqnb
        client.wait_all(runs, timeout=30)
        assert runs[0].status == "completed"
        client.close()

        async def go() -> None:
            aio = AsyncClient(emu.token, emu.base_url, account_base_url=closed)
            with pytest.warns(BalanceUnchecked, match="without a balance check") as said:
                await aio.sweep(prompts=[FOX2], seeds=[2])
            assert said[0].filename == __file__
            await aio.wait_all(timeout=30)
            await aio.aclose()

        asyncio.run(go())


def test_the_account_base_is_configurable_like_the_model_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    runcomfy = Backend("runcomfy", "https://model-api.runcomfy.net", "RUNCOMFY_TOKEN")
    emulated = Backend("emulator", "http://127.0.0.1:8765/v1", "embedded emulator")
    monkeypatch.delenv("RUNCOMFY_API_BASE", raising=False)
    assert account_base_for(runcomfy) == DEFAULT_ACCOUNT_BASE == "https://api.runcomfy.net"
    assert account_base_for(emulated) == "http://127.0.0.1:8765"  # the emulator answers the balance itself
    monkeypatch.setenv("RUNCOMFY_API_BASE", "https://account.example/")
    assert account_base_for(runcomfy) == "https://account.example"
    assert account_base_for(emulated) == "http://127.0.0.1:8765"
    assert account_base_for(runcomfy, "https://given.example") == "https://given.example"


@pytest.mark.parametrize("body", [{}, {"balance_usd": "lots"}, {"balance_usd": True}, [], {"balance_usd": "Infinity"}])
def test_an_unreadable_balance_answer_is_a_server_error(body: Any) -> None:
    with pytest.raises(seqnb.ServerError, match="balance_usd"):
        parse_balance(body, "test", 0.0)


def test_the_header_line_never_raises() -> None:
    balance = parse_balance({"balance_usd": 12.345, "currency": "usd"}, "RunComfy account", 0.0)
    assert balance_text(balance) == "balance USD 12.345"
    assert balance_text(None) == "balance not read yet"
    assert balance_text(seqnb.AuthError("Missing token", status_code=401)).startswith("balance unknown (Missing token")


@pytest.mark.parametrize(
    ("base", "ours"),
    [
        ("https://model-api.runcomfy.net", True),
        ("https://model-api.runcomfy.net/v1", True),
        ("https://runcomfy.net", True),
        ("https://eu.model-api.runcomfy.net.", True),
        ("http://model-api.runcomfy.net", False),  # the token never goes in clear
        ("https://runcomfy.net.evil.example", False),
        ("https://evilruncomfy.net", False),
        ("https://api.example/v1", False),
        ("http://127.0.0.1:8000/v1", False),  # a tunnel on loopback: RunComfy's perhaps, but not said to be
    ],
)
def test_the_balance_carries_the_token_only_for_runcomfys_own_api_or_a_named_account_api(
    base: str, ours: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = Secret("tok-balance-canary")
    backend = Backend("runcomfy", base, "RUNCOMFY_TOKEN")
    monkeypatch.delenv("RUNCOMFY_API_BASE", raising=False)
    assert (balance_secret(backend, None, secret) is secret) is ours
    assert balance_secret(backend, "https://account.example", secret) is secret  # named: the user's choice
    monkeypatch.setenv("RUNCOMFY_API_BASE", "https://account.example")
    assert balance_secret(backend, None, secret) is secret
    assert balance_secret(Backend("emulator", "http://127.0.0.1:1/v1", "embedded emulator"), None, secret) is secret


def test_a_balance_for_another_api_is_unchecked_and_says_why_without_sending_the_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A service on loopback that is not seqnb's emulator, no account API named: the token is not sent to
    RunComfy's account API (which the test could not reach anyway: nothing resolves here), and the balance
    says why it was not read."""
    from tests.api.test_backend_label import stripping_proxy

    monkeypatch.delenv("RUNCOMFY_API_BASE")
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        asked.append(str(host))
        return real(host, *args, **kw)

    with emulator(**FAST, token=None) as upstream, stripping_proxy(upstream.base_url) as url:  # any token
        client = seqnb.connect("rc_live_balance_canary", url, ledger=False, download=False)
        assert client.backend.kind == "runcomfy" and client.aio._money.account_base == DEFAULT_ACCOUNT_BASE
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        with pytest.raises(seqnb.SettingInvalid, match="not read") as info:
            client.balance()
        assert "account_base_url=" in str(info.value) and "RUNCOMFY_API_BASE" in str(info.value)
        with pytest.warns(BalanceUnchecked, match="not read: the Model API is not RunComfy's"):
            runs = client.sweep(prompts=[FOX2], seeds=[1], quiet=True)
        client.wait_all(runs, timeout=30)
        assert runs[0].status == "completed"
        assert balance_text(info.value).startswith("balance unknown (not read")
        client.close()
    assert "api.runcomfy.net" not in asked  # not even looked up
