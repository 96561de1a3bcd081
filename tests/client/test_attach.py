"""Attach: a job submitted elsewhere (plain HTTP here, RunComfy's CLI or playground in life) is watched,
downloaded and recorded like any run."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.images.cache import ImageCache
from seqnb.ledger.facade import Ledger

M45 = "bytedance/seedream-4-5/sequential"


def submitted_elsewhere(http: httpx.Client, count: int = 3) -> str:
    answer = http.post(
        f"/v1/models/{M45}",
        json={"prompt": f"Generate {count} images of a kite", "sequential_image_generation_options": count, "seed": 5},
    )
    answer.raise_for_status()
    return str(answer.json()["request_id"])


def test_an_attached_job_is_watched_downloaded_and_recorded(
    emu: EmulatorServer, http: httpx.Client, tmp_path: Path
) -> None:
    request_id = submitted_elsewhere(http, count=3)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    client = seqnb.connect(emu.token, emu.base_url, ledger=ledger, download=ImageCache(tmp_path / "images"))
    run = client.attach(request_id, "seedream-4.5", "Generate 3 images of a kite", count=3)
    assert run.request_id == request_id and "attached" in run.note
    assert ledger.count() == 1  # recorded before it is watched
    run.wait(30)
    client.settle(timeout=60)
    assert run.status == "completed" and len(run.images) == 3
    row = ledger.runs().iloc[0]
    assert (row["request_id"], row["status"], row["prompt"], int(row["requested"])) == (
        request_id,
        "completed",
        "Generate 3 images of a kite",
        3,
    )
    assert row["server_finished_at"]  # what the service told about it
    images = ledger.images(run.id)
    assert len(images) == 3 and all(Path(p).is_file() for p in images["path"])
    assert emu.counters.submits == 1  # watching it never submitted anything
    assert client.attach(request_id, "seedream-4.5").id == run.id  # once only
    client.close()


def test_what_is_not_known_is_said(emu: EmulatorServer, http: httpx.Client, tmp_path: Path) -> None:
    request_id = submitted_elsewhere(http, count=2)
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
    run = client.attach(request_id, "seedream-4.5").wait(30)
    assert run.status == "completed" and len(run.images) == 2
    assert "unknown: prompt, count (estimated at 3)" in run.note
    client.close()


def test_an_id_the_service_does_not_know_becomes_lost(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
    run = client.attach("0b6f1c9e-0000-4000-8000-000000000000", "seedream-4.0").wait(30)
    assert run.status == "lost" and "no longer knows" in (run.error or "")
    assert client.ledger is not None and client.ledger.runs()["status"].tolist() == ["lost"]
    client.close()


@pytest.mark.parametrize(
    "bad", ["", "  ", "../../models/x", "abc/def", "a b", "x" * 200, "?q=1", None, 42, "req.1", "a:b", "x" * 129]
)
def test_a_malformed_request_id_never_reaches_a_url(bad: object, emu: EmulatorServer, tmp_path: Path) -> None:
    """One rule for every request id, RunComfy's own: ``[a-zA-Z0-9_-]{1,128}``."""
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
    calls = emu.counters.status_calls + emu.counters.result_calls
    with pytest.raises(seqnb.SettingInvalid, match=r"request_id .*letters, digits, '-' and '_' only, at most 128"):
        client.attach(bad, "seedream-4.5")  # type: ignore[arg-type]
    assert client.runs() == [] and client.ledger is not None and client.ledger.count() == 0
    assert emu.counters.status_calls + emu.counters.result_calls == calls
    client.close()


def test_a_job_the_ledger_cannot_record_is_not_attached(
    emu: EmulatorServer, http: httpx.Client, tmp_path: Path
) -> None:
    request_id = submitted_elsewhere(http)
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
    with pytest.raises(seqnb.LedgerError, match="64-bit"):
        client.attach(request_id, "seedream-4.5", seed=2**63)
    assert client.runs() == []
    client.close()


def test_the_async_client_attaches_too(emu: EmulatorServer, http: httpx.Client) -> None:
    import asyncio

    request_id = submitted_elsewhere(http, count=1)

    async def go() -> seqnb.AsyncRun:
        client = seqnb.AsyncClient(emu.token, emu.base_url)
        run = await client.attach(request_id, "seedream-4.5", count=1)
        await run.wait(30)
        await client.aclose()
        return run

    run = asyncio.run(go())
    assert run.status == "completed" and len(run.images) == 1
