"""Answers the emulator never gives, served over loopback by a scripted server: each must end in a clear state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import seqnb
from seqnb import errors
from seqnb.api.transport import RetryPolicy
from seqnb.client.core import AsyncClient
from seqnb.runs.pacing import PollPolicy
from tests.hostile import HostileServer, Reply, Script, accepted

FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05, submit_attempts=3, max_retry_after=0.2)
FAST_POLL = PollPolicy(first=0.01, fast=0.01, cap_queued=0.05, cap_running=0.05, cap_far=0.05)
ISO = "2025-01-02T03:04:05.000Z"


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


def req(n: int = 2, seed: int = 1) -> seqnb.Request:
    return seqnb.Request("seedream-4.5", f"Generate {n} images of a red fox in snow", count=n, seed=seed)


def client_for(server: HostileServer, **kw: Any) -> AsyncClient:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("poll", FAST_POLL)
    return AsyncClient("tok", server.base_url, **kw)


def completed(output: Any, **extra: Any) -> Script:
    body = {"request_id": "req-1", "status": "completed", "output": output, "created_at": ISO, "finished_at": ISO}
    body.update(extra)
    return Script(submit=[accepted()], status=[Reply(200, {"status": "completed"})], result=[Reply(200, body)])


def submit_and_wait(server: HostileServer, script: Script, ledger: seqnb.Ledger | None = None) -> seqnb.AsyncRun:
    server.play(script)

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        if ledger is not None:
            client.use_ledger(ledger)
        run = client._prepare(req())
        with pytest.raises(errors.SeqnbError) if script.submit[0].status != 200 else _nothing():
            await client._send(run)
        if run.request_id:
            await run.wait(10)
        await client.aclose()
        return run

    return asyncio.run(go())


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# --- output shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "images"),
    [
        (["https://x.test/a.png", "https://x.test/b.png"], ["https://x.test/a.png", "https://x.test/b.png"]),
        ("https://x.test/a.png", ["https://x.test/a.png"]),
        ({"images": "https://x.test/a.png"}, ["https://x.test/a.png"]),
        (
            {"images": [{"url": "https://x.test/a.png"}, "https://x.test/b.png"]},
            ["https://x.test/a.png", "https://x.test/b.png"],
        ),
        ({"image": {"url": "https://x.test/a.png"}, "extra": 1}, ["https://x.test/a.png"]),
    ],
)
def test_every_output_shape_gives_its_urls(server: HostileServer, output: Any, images: list[str]) -> None:
    run = submit_and_wait(server, completed(output))
    assert run.status == "completed" and run.images == images


def test_more_urls_than_asked_keep_the_count_asked_and_say_so(server: HostileServer, tmp_path: Path) -> None:
    """1,000 URLs for a count=2 run: 2 images kept (each one is a download, an image row, a frame to score)."""
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")
    urls = [f"https://x.test/{i}.png" for i in range(1000)]
    run = submit_and_wait(server, completed({"images": urls}), ledger)
    assert run.status == "completed" and run.images == urls[:2] and run.returned == 2 and not run.short
    assert "answered 1000 image URLs for 2 asked; seqnb kept the first 2" in run.note
    assert len(ledger.images(run.id)) == 2 and ledger.restore(run.id).images == urls[:2]
    ledger.close()


def test_an_output_that_holds_no_urls_fails_quoting_the_answer(server: HostileServer) -> None:
    run = submit_and_wait(server, completed(42))
    assert run.status == "failed" and "42" in (run.error or "") and "output" in (run.error or "")


@pytest.mark.parametrize("stamp", [1735787045, 1735787045.5, 1735787045000])
def test_numeric_timestamps_are_stored_as_iso_and_the_ledger_reads_them(
    server: HostileServer, tmp_path: Path, stamp: float
) -> None:
    ledger = seqnb.Ledger(tmp_path / "l.sqlite")
    run = submit_and_wait(server, completed(["https://x.test/a.png"], created_at=stamp, finished_at="garbage"), ledger)
    assert run.status == "completed"
    assert run.server_created_at is not None and run.server_created_at.startswith("2025-01-02T03:04:05")
    assert run.server_finished_at is None
    frame = ledger.runs()
    assert str(frame.loc[0, "server_created_at"]).startswith("2025-01-02 03:04:05")
    ledger.spend()


@pytest.mark.parametrize("rid", ["abc\r\nX-Evil: 1", "a/../b", "", " ", "x" * 1000, 12.5, ["r"], {"id": 1}])
def test_a_request_id_that_cannot_go_into_a_url_leaves_the_run_in_doubt(server: HostileServer, rid: Any) -> None:
    server.play(Script(submit=[Reply(200, {"request_id": rid})], status=[Reply(200, {"status": "in_queue"})]))

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        run = client._prepare(req())
        with pytest.raises(errors.SeqnbError):
            await client._send(run)
        await run.wait(5)
        await client.aclose()
        return run

    run = asyncio.run(go())
    assert run.status == "unknown" and run.request_id is None
    assert "request_id" in (run.error or "") and "pay twice" in (run.error or "")
    assert server.calls["status"] == 0 and server.calls["result"] == 0


@pytest.mark.parametrize("rid", ["req/1", "req.1", "tok:en", "r~1", "x" * 129])
def test_an_id_outside_runcomfys_rule_makes_the_run_unknown_quoting_it_and_no_request_goes_to_a_strange_path(
    server: HostileServer, rid: str
) -> None:
    """RunComfy's own clients check an id against ``[a-zA-Z0-9_-]{1,128}`` before it goes into a URL: so does seqnb."""
    server.play(Script(submit=[Reply(200, {"request_id": rid})], status=[Reply(200, {"status": "in_queue"})]))

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        run = client._prepare(req())
        with pytest.raises(errors.ServerError, match="no usable request_id"):
            await client._send(run)
        assert await client.cancel(run) == "not_cancellable"  # nothing to ask about either
        await client.aclose()
        return run

    run = asyncio.run(go())
    assert run.status == "unknown" and run.request_id is None
    assert repr(rid)[:40] in (run.error or "") and "not a RunComfy request id" in (run.error or "")
    assert "Check your RunComfy requests" in (run.error or "")
    assert [p for p in server.paths if p.startswith("/v1/requests")] == []  # no status, result or cancel call


@pytest.mark.parametrize(
    ("route", "body", "status"),
    [
        ("status", {"error_code": 404001, "error_message": "Request not found or expired"}, "lost"),
        ("result", {"error_code": 404001, "error_message": "Request not found or expired"}, "lost"),
        ("status", {"error_code": 500001, "error_message": "Internal error"}, "completed"),
        ("result", {"error_code": 500001, "error_message": "Internal error"}, "completed"),
    ],
)
def test_an_http_200_with_an_error_code_on_status_and_result_is_that_error(
    server: HostileServer, route: str, body: dict[str, Any], status: str
) -> None:
    """Never read as an answer: a request the service no longer knows is lost; a server error is asked again."""
    done = {"request_id": "req-1", "status": "completed", "output": ["https://x.test/a.png"], "created_at": ISO}
    replies = {
        "status": [Reply(200, body), Reply(200, {"status": "completed"})],
        "result": [Reply(200, body), Reply(200, done)],
    }
    other = "result" if route == "status" else "status"
    script = Script(submit=[accepted()], **{route: replies[route], other: replies[other][1:]})
    run = submit_and_wait(server, script)
    assert run.status == status, run.error
    if status == "lost":
        assert "no longer knows request req-1" in (run.error or "")
    else:
        assert server.calls[route] >= 2 and run.images == ["https://x.test/a.png"]


def test_an_http_200_with_an_error_code_from_the_catalog_or_the_balance_is_that_error(server: HostileServer) -> None:
    refused = Reply(200, {"error_code": 400004, "error_message": "Invalid or expired token"})
    server.play(Script(catalog=[refused], balance=[refused]))

    async def go() -> None:
        client = client_for(server, account_base_url=server.base_url)
        try:
            with pytest.raises(errors.AuthError, match="Invalid or expired token"):
                await client.balance()
            await client.refresh_prices()
            price = client.price("seedream-4.5")
            assert price.source.startswith("built-in list price, the catalog refused the token")
            assert client.catalog.limits_source("seedream-4.5-edit").startswith("built in (UNCONFIRMED)")
        finally:
            await client.aclose()

    asyncio.run(go())
    assert server.calls["catalog"] >= 1 and server.calls["balance"] == 1


def test_a_status_seqnb_does_not_know_keeps_polling_then_moves_on(server: HostileServer) -> None:
    body = {"status": "completed", "output": {"images": ["https://x.test/a.png"]}, "created_at": ISO}
    script = Script(
        submit=[accepted()],
        status=[
            Reply(200, {"status": "sleeping"}),
            Reply(200, ["not", "a", "dict"]),
            Reply(200, {"status": "completed"}),
        ],
        result=[Reply(200, body)],
    )
    run = submit_and_wait(server, script)
    assert run.status == "completed" and run.images == ["https://x.test/a.png"]
    assert server.calls["status"] >= 3


def test_a_failed_result_keeps_the_services_message(server: HostileServer) -> None:
    body = {"status": "failed", "error": {"message": "NSFW filter"}, "created_at": 5, "finished_at": None}
    script = Script(submit=[accepted()], status=[Reply(200, {"status": "failed"})], result=[Reply(200, body)])
    run = submit_and_wait(server, script)
    assert run.status == "failed" and run.error == "NSFW filter" and run.server_created_at is None


# --- waits stay bounded ----------------------------------------------------------------------------


def test_a_long_retry_after_is_capped(server: HostileServer) -> None:
    script = completed(["https://x.test/a.png"])
    script.status = [
        Reply(429, {"error": "slow down"}, (("Retry-After", "3600"),)),
        Reply(200, {"status": "completed"}),
    ]
    run = submit_and_wait(server, script)  # waits at most FAST_RETRY.max_retry_after, not an hour
    assert run.status == "completed"


# --- error semantics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(409, {"error_message": "job already started"}),
        Reply(400, {"detail": [{"loc": ["body", "x"], "msg": "job already started"}]}),
        Reply(404, {"error_code": 404001, "error_message": "job already started"}),
        Reply(200, {"error_code": 404001, "error_message": "job already started"}),
    ],
)
def test_a_refused_cancel_is_not_cancellable_with_the_services_words(server: HostileServer, reply: Reply) -> None:
    server.play(Script(submit=[accepted()], status=[Reply(200, {"status": "in_queue"})], cancel=[reply]))

    async def go() -> tuple[seqnb.AsyncRun, str]:
        client = client_for(server)
        run = await (await client.submit(req())).accepted()
        outcome = await run.cancel()
        await client.aclose()
        return run, outcome

    run, outcome = asyncio.run(go())
    assert outcome == "not_cancellable" and run.cancel_outcome == "not_cancellable"
    assert "job already started" in run.note and "fix the listed fields" not in run.note
    assert server.calls["cancel"] == 1  # a refusal is not retried


def test_a_cancel_answered_5xx_is_retried(server: HostileServer) -> None:
    cancelled = Reply(200, {"status": "cancelled", "outcome": "cancelled"})
    server.play(
        Script(submit=[accepted()], status=[Reply(200, {"status": "in_queue"})], cancel=[Reply(503, {}), cancelled])
    )

    async def go() -> str:
        client = client_for(server)
        run = await (await client.submit(req())).accepted()
        outcome = await run.cancel()
        assert run.status == "cancelled"
        await client.aclose()
        return outcome

    assert asyncio.run(go()) == "cancelled" and server.calls["cancel"] == 2


def test_a_404_on_submit_is_an_unknown_model_and_stops_the_sweep(server: HostileServer) -> None:
    server.play(Script(submit=[Reply(404, {"detail": "Not Found"})]))

    async def go() -> list[seqnb.AsyncRun]:
        client = client_for(server)
        runs = client._prepare_sweep(prompts=["Generate 2 images of a cat"], seeds=range(5))
        await client._send_all(runs, concurrency=1)
        await client.aclose()
        return list(runs)

    runs = asyncio.run(go())
    assert all(r.status == "failed" for r in runs)
    assert "not charged" in (runs[0].error or "") and "seqnb.models()" in (runs[0].error or "")
    assert server.calls["submit"] == 1


def test_permission_denied_is_not_a_token_problem(server: HostileServer) -> None:
    server.play(Script(submit=[Reply(403, {"error_code": 403001, "error_message": "belongs to another account"})]))

    async def go() -> errors.SeqnbError:
        client = client_for(server)
        run = await client.submit(req())
        with pytest.raises(errors.PermissionDenied) as info:
            await run.accepted()
        await client.aclose()
        return info.value

    error = asyncio.run(go())
    assert not isinstance(error, errors.AuthError) and errors.AuthError.hint not in str(error)
    assert "another account" in str(error)


@pytest.mark.parametrize("status", [200, 409, 418])
def test_an_unknown_error_code_on_submit_is_a_definite_refusal(server: HostileServer, status: int) -> None:
    server.play(Script(submit=[Reply(status, {"error_code": 777777, "error_message": "nope"})]))

    async def go() -> seqnb.AsyncRun:
        client = client_for(server)
        run = client._prepare(req())
        with pytest.raises(errors.APIError):
            await client._send(run)
        await client.aclose()
        return run

    run = asyncio.run(go())
    assert run.status == "failed" and (run.error or "").startswith("not accepted, not charged")
    assert server.calls["submit"] == 1
