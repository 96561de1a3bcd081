"""The client and poller against the emulator over loopback: states, errors, retries, cancel, sweeps."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import time
import warnings
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

import seqnb
from seqnb import errors
from seqnb.api.auth import Secret, resolve_token
from seqnb.api.transport import RetryPolicy, map_error
from seqnb.client.core import AsyncClient, DuplicateSubmitWarning
from seqnb.emulator import EmulatorServer, Faults
from seqnb.errors import SweepInvalid
from seqnb.runs.pacing import PollPolicy, next_delay
from seqnb.runs.run import RunEvent
from seqnb.testing import emulator

T = TypeVar("T")
FAST_RETRY = RetryPolicy(attempts=8, base=0.02, cap=0.2, submit_attempts=4)


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def req(n: int = 2, seed: int | None = 1, model: str = "seedream-4.5", **kw: Any) -> seqnb.Request:
    return seqnb.Request(model, f"Generate {n} images of a red fox in snow", count=n, seed=seed, **kw)


def client_for(emu: EmulatorServer, **kw: Any) -> AsyncClient:
    kw.setdefault("retry", FAST_RETRY)
    return AsyncClient(emu.token, emu.base_url, **kw)


# --- backend and token --------------------------------------------------------------------------


def test_connect_without_token_uses_the_embedded_emulator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNCOMFY_TOKEN", raising=False)
    monkeypatch.delenv("RUNCOMFY_BASE_URL", raising=False)
    monkeypatch.setenv("RUNCOMFY_CONFIG_DIR", str(tmp_path))
    client = seqnb.connect()
    assert client.backend.kind == "emulator"
    assert "offline emulator" in str(client.backend) and "nothing is charged" in str(client.backend)
    run = client.submit(req()).wait(30)
    assert run.status == "completed" and len(run.images) == 2


def test_token_precedence(tmp_path: Path) -> None:
    (tmp_path / "token.json").write_text(json.dumps({"access_token": "from-file"}))
    env = {"RUNCOMFY_CONFIG_DIR": str(tmp_path)}
    assert resolve_token(None, env) == Secret("from-file") and resolve_token(None, env).source == "runcomfy login"  # type: ignore[union-attr]
    env["RUNCOMFY_TOKEN"] = "from-env"
    assert resolve_token(None, env).source == "RUNCOMFY_TOKEN"  # type: ignore[union-attr]
    assert resolve_token("from-arg", env).reveal() == "from-arg"  # type: ignore[union-attr]
    xdg = tmp_path / "xdg" / "runcomfy"
    xdg.mkdir(parents=True)
    (xdg / "token.json").write_text(json.dumps({"access_token": "xdg"}))
    assert resolve_token(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).reveal() == "xdg"  # type: ignore[union-attr]
    assert resolve_token(None, {"HOME": str(tmp_path / "nobody")}) is None


def test_real_service_needs_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNCOMFY_TOKEN", raising=False)
    monkeypatch.setenv("RUNCOMFY_CONFIG_DIR", str(tmp_path))
    with pytest.raises(errors.AuthError, match="RUNCOMFY_TOKEN"):
        AsyncClient(None, "https://model-api.runcomfy.net")
    client = AsyncClient("tok", "https://model-api.runcomfy.net")
    assert client.backend.kind == "runcomfy" and client._transport.base_url == "https://model-api.runcomfy.net/v1"
    assert AsyncClient("tok", "https://example.test/v2/")._transport.base_url == "https://example.test/v2"


def test_the_token_never_shows(emu: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-super-secret-123"
    s = Secret(secret)
    assert secret not in repr(s) and secret not in str(s) and secret not in f"{s}"
    with pytest.raises(TypeError):
        pickle.dumps(s)
    caplog.set_level(logging.DEBUG)
    client = AsyncClient(secret, emu.base_url, retry=FAST_RETRY)  # the emulator wants another token
    assert secret not in repr(client) and secret not in str(client.backend)

    async def go() -> seqnb.AsyncRun:
        run = client._prepare(req())
        with pytest.raises(errors.AuthError) as info:
            await client._send(run)
        assert secret not in str(info.value) and secret not in repr(info.value.body)
        await client.aclose()
        return run

    run = arun(go())
    assert run.status == "failed" and "not charged" in (run.error or "")
    assert secret not in caplog.text and secret not in repr(run)


# --- lifecycle ---------------------------------------------------------------------------------


def test_submit_wait_images_and_every_transition(emu: EmulatorServer) -> None:
    seen: list[tuple[str, str]] = []

    async def go() -> seqnb.AsyncRun:
        client = client_for(emu)
        client.subscribe(lambda e: seen.append((e.old, e.new)))
        run = await client.submit(req(3))
        await run.wait(20)
        await client.aclose()
        return run

    run = arun(go())
    assert run.status == "completed" and run.returned == 3 and not run.short
    assert all(u.startswith(emu.base_url + "/files/") for u in run.images)
    moves = [b for a, b in seen if a != b]
    assert moves[:2] == ["submitting", "in_queue"] and moves[-1] == "completed"
    assert seen[0] == ("created", "created")
    assert run.server_created_at and run.server_finished_at and run.finished_at
    assert emu.counters.submits == 1


def test_wait_timeout_stops_waiting_not_the_run() -> None:
    with emulator(queue_wait=0, service_time=0.8) as emu:

        async def go() -> seqnb.AsyncRun:
            client = client_for(emu)
            run = await client.submit(req())
            with pytest.raises(errors.WaitTimeout, match="keeps running"):
                await run.wait(0.2)
            await run.wait(10)
            await client.aclose()
            return run

        assert arun(go()).status == "completed"
        assert emu.counters.cancels == 0


def test_deadline_stops_watching_without_cancelling() -> None:
    with emulator(queue_wait=30) as emu:

        async def go() -> tuple[seqnb.AsyncRun, list[str]]:
            client = client_for(emu)
            details: list[str] = []
            client.subscribe(lambda e: details.append(e.detail))
            run = await client.submit(req(), deadline=0.5)
            await asyncio.sleep(1.0)
            calls = emu.counters.status_calls
            await asyncio.sleep(1.0)
            assert emu.counters.status_calls == calls  # no more polling
            await client.aclose()
            return run, details

        run, details = arun(go())
        assert run.status == "in_queue" and not run.watching and "deadline" in details
        assert "not cancelled" in run.note and emu.counters.cancels == 0


def test_cancel_is_honest() -> None:
    with emulator(workers=1, queue_wait=0, service_time=0.6) as emu:

        async def go() -> None:
            client = client_for(emu)
            running = await (await client.submit(req(seed=1))).accepted()
            queued = await (await client.submit(req(seed=2))).accepted()
            never_sent = client._prepare(req(seed=3))
            while running.status != "in_progress":
                await client.refresh(running)
                await asyncio.sleep(0.02)
            assert await running.cancel() == "not_cancellable"
            assert "cannot be cancelled" in running.note and running.cancel_outcome == "not_cancellable"
            assert await queued.cancel() == "cancelled" and queued.status == "cancelled"
            assert await never_sent.cancel() == "cancelled" and never_sent.request_id is None
            await running.wait(10)
            assert running.status == "completed"
            assert await running.cancel() == "not_cancellable"
            await client.aclose()

        arun(go())
        assert emu.counters.submits == 2 and emu.counters.cancels == 1


def test_failed_short_and_lost_runs() -> None:
    with emulator(queue_wait=0, service_time=0.1, faults=Faults(fail=1.0)) as emu:
        run = arun(_submit_and_wait(emu, req()))
        assert run.status == "failed" and "failed" in (run.error or "")
    with emulator(queue_wait=0, service_time=0.1, faults=Faults(short=1.0)) as emu:
        run = arun(_submit_and_wait(emu, req(5)))
        assert run.status == "completed" and run.short and 1 <= len(run.images) < 5
        assert "returned" in run.note and "you pay for 5" in run.note
    with emulator(queue_wait=30) as emu:

        async def go() -> seqnb.AsyncRun:
            client = client_for(emu)
            run = await client.submit(req())
            await asyncio.sleep(0.1)
            # the service forgets its queue (a control route: it needs the token)
            httpx.post(emu.base_url + "/_emulator/restart", headers={"Authorization": f"Bearer {emu.token}"})
            await run.wait(10)
            await client.aclose()
            return run

        lost = arun(go())
        assert lost.status == "lost" and "no longer knows" in (lost.error or "")


async def _submit_and_wait(emu: EmulatorServer, request: seqnb.Request) -> seqnb.AsyncRun:
    client = client_for(emu)
    run = await client.submit(request)
    await run.wait(20)
    await client.aclose()
    return run


# --- errors and retries ------------------------------------------------------------------------


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {"error_code": 400004, "error_message": "bad token"}, errors.AuthError),
        (403, {"error_code": 403001, "message": "no"}, errors.PermissionDenied),
        (400, {"error_code": 400001, "error_message": "bad model"}, errors.ModelNotFound),
        (400, {"error_code": 400002, "error_message": "top up"}, errors.InsufficientBalance),
        (402, {"error_message": "Add funds to your account"}, errors.InsufficientBalance),  # no error_code needed
        (402, {}, errors.InsufficientBalance),
        (404, {"error_code": 404001, "error_message": "gone"}, errors.RequestNotFound),
        (422, {"detail": [{"loc": ["body", "prompt"], "msg": "too long"}]}, errors.InputRejected),
        (429, {"error": "slow down"}, errors.RateLimited),
        (502, {"detail": "bad gateway"}, errors.ServerError),
        (200, {"error_code": 500001, "error_message": "internal"}, errors.ServerError),
        (200, {"error_code": 400004, "error_message": "expired"}, errors.AuthError),
    ],
)
def test_errors_are_mapped_in_one_place(status: int, body: Any, kind: type[errors.APIError]) -> None:
    error = map_error(response(status, body, {"Retry-After": "3"}))
    assert type(error) is kind
    assert error.error_code == body.get("error_code") and error.status_code == status
    if isinstance(error, errors.RateLimited):
        assert error.retry_after == 3.0
    if isinstance(error, errors.InputRejected):
        assert error.fields == ["prompt"] and "prompt: too long" in str(error)
    assert map_error(response(200, {"request_id": "x"})) is None


def test_status_calls_retry_through_faults() -> None:
    with emulator(queue_wait=0, service_time=0.2, workers=8) as emu:
        emu.set_faults(
            Faults(rate_limit=0.2, retry_after=0.05, server_error=0.2, drop=0.1, drop_after=0.1, error_200=0.1, seed=3),
            route="status",
        )
        emu.set_faults(Faults(server_error=0.3, drop=0.2, seed=4), route="result")

        async def go() -> list[seqnb.AsyncRun]:
            client = client_for(emu)
            runs = [await client.submit(req(seed=i)) for i in range(8)]
            await client.wait_all(runs, timeout=60)
            await client.aclose()
            return runs

        runs = arun(go())
        assert [r.status for r in runs] == ["completed"] * 8
        assert (
            sum(
                emu.counters.faults[f"status.{k}"]
                for k in ("rate_limit", "server_error", "drop", "drop_after", "error_200")
            )
            > 0
        )


def test_submit_is_never_retried_when_it_may_have_arrived() -> None:
    with emulator(queue_wait=0, service_time=0.1) as emu:
        emu.set_faults(Faults(drop_after=1.0), route="submit")

        async def go() -> None:
            client = client_for(emu)
            run = client._prepare(req())
            with pytest.raises(errors.TransportError):
                await client._send(run)
            assert run.status == "unknown" and "before you submit it again" in (run.error or "")
            assert emu.counters.submits == 1  # one job exists on the service, one attempt made
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                client._prepare(req())
            assert any(issubclass(w.category, DuplicateSubmitWarning) and "in doubt" in str(w.message) for w in caught)
            await client.aclose()

        arun(go())


def test_a_submit_cancelled_in_flight_is_in_doubt_and_the_cancellation_goes_on(emu: EmulatorServer) -> None:
    async def go() -> None:
        arrived = asyncio.Event()

        async def never_answers(request: httpx.Request) -> httpx.Response:
            arrived.set()  # the POST has left: it may reach the service
            await asyncio.Event().wait()  # (the emulator's slow answer would keep its server busy after the test)
            raise AssertionError("unreachable")

        client = client_for(
            emu, http=httpx.AsyncClient(base_url=emu.base_url, transport=httpx.MockTransport(never_answers))
        )
        run = client._prepare(req())
        sending = asyncio.create_task(client._send(run))
        await arrived.wait()
        assert run.status == "submitting"
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):  # not wrapped: the caller's cancellation stays one
            await sending
        assert run.status == "unknown" and (run.error or "").startswith("the submit was interrupted (CancelledError")
        assert "before you submit it again" in (run.error or "")
        await client.aclose()

    arun(go())


def test_submit_is_retried_when_it_certainly_did_not_arrive() -> None:
    with emulator(queue_wait=0, service_time=0.1) as emu:
        emu.set_faults(Faults(rate_limit=0.5, retry_after=0.01, seed=11), route="submit")

        async def go() -> list[seqnb.AsyncRun]:
            client = client_for(emu, retry=RetryPolicy(base=0.01, cap=0.05, submit_attempts=10))
            runs = [client._prepare(req(seed=i)) for i in range(20)]
            await client._send_all(runs)
            await client.wait_all(runs, timeout=30)
            await client.aclose()
            return runs

        runs = arun(go())
        assert all(r.status == "completed" for r in runs)
        assert emu.counters.faults["submit.rate_limit"] > 0
        assert emu.counters.submits == 20  # each accepted exactly once

    async def refused() -> seqnb.AsyncRun:
        client = AsyncClient("tok", "http://127.0.0.1:9", retry=FAST_RETRY)  # nothing listens on port 9
        run = client._prepare(req())
        with pytest.raises(errors.ConnectError):
            await client._send(run)
        await client.aclose()
        return run

    run = arun(refused())
    assert run.status == "failed" and run.error and run.error.startswith("not sent")


def test_rate_limit_slows_every_call_down() -> None:
    with emulator(queue_wait=0, service_time=0.1) as emu:
        emu.set_faults(Faults(rate_limit=1.0, retry_after=0.4), route="status")

        async def go() -> float:
            client = client_for(emu, retry=RetryPolicy(attempts=2, base=0.0, cap=0.0))
            run = await client.submit(req())
            start = time.monotonic()
            with pytest.raises(errors.RateLimited):
                await client._transport.call("GET", f"/requests/{run.request_id}/status")
            elapsed = time.monotonic() - start
            await client.aclose()
            return elapsed

        assert arun(go()) >= 0.4  # the second try waited for Retry-After


def test_faults_in_a_sweep_of_200_runs_never_cost_twice() -> None:
    """Every run ends in a terminal state, and the service made exactly one job per run that reached it."""
    with emulator(queue_wait=0.05, base_seconds=0.1, seconds_per_image=0.05, workers=64) as emu:
        emu.set_faults(Faults(fail=0.05, short=0.1, seed=7))  # per-job faults
        emu.set_faults(
            Faults(
                rate_limit=0.1, retry_after=0.05, drop_after=0.03, server_error=0.03, error_200=0.02, drop=0.02, seed=5
            ),
            route="submit",
        )
        call_faults = Faults(
            rate_limit=0.1,
            retry_after=0.05,
            server_error=0.1,
            drop=0.05,
            drop_after=0.05,
            error_200=0.05,
            slow=0.02,
            slow_seconds=1.5,
            seed=6,
        )
        emu.set_faults(call_faults, route="status")
        emu.set_faults(call_faults, route="result")
        emu.set_faults(call_faults, route="cancel")

        async def go() -> list[seqnb.AsyncRun]:
            client = client_for(emu, timeout=1.0, max_concurrency=64)
            runs = client._prepare_sweep(
                prompts=["Generate 2 images of a fox", "Generate 3 images of an owl"], seeds=range(100)
            )
            await client._send_all(runs, concurrency=16)
            for run in runs[:20]:  # some cancels in the mix
                if run.cancellable:
                    await run.cancel()
            await client.wait_all(runs, timeout=240)
            await client.aclose()
            return list(runs)

        runs = arun(go())
        assert len(runs) == 200 and all(r.done for r in runs)
        with_id = [r for r in runs if r.request_id]
        assert len({r.request_id for r in with_id}) == len(with_id)
        f = emu.counters.faults
        # jobs made = runs that know their job + submits whose answer was lost after the job was made
        assert emu.counters.submits == len(with_id) + f["submit.drop_after"]
        in_doubt = f["submit.drop_after"] + f["submit.drop"] + f["submit.server_error"]
        assert sum(r.status == "unknown" for r in runs) == in_doubt
        refused = [r for r in runs if (r.error or "").startswith("not accepted, not charged") and "HTTP 200" in r.error]
        assert len(refused) == f["submit.error_200"]  # the service answered: nothing charged, nothing in doubt
        assert {r.status for r in runs} <= {"completed", "failed", "cancelled", "unknown"}
        assert any(r.short for r in runs) and any(r.status == "failed" and r.request_id for r in runs)
        read_faults = sum(
            f[f"{route}.{k}"] for route in ("status", "result") for k in ("server_error", "drop", "drop_after", "slow")
        )
        assert in_doubt > 0 and read_faults > 20


# --- sweeps -------------------------------------------------------------------------------------


def test_sweep_validates_prices_and_respects_the_budget(emu: EmulatorServer) -> None:
    client = client_for(emu)
    plan = client.plan(
        prompts=["Generate 2 images of a cat", "Generate 4 images of a dog"],
        seeds=[1, 2, 3],
        models=["seedream-4.0", "seedream-4.5"],
    )
    assert plan.runs == 12 and plan.images == 36 and str(plan.total_text()) == "USD 1.26"
    assert [r.count for r in plan.requests[:6]] == [2, 2, 2, 4, 4, 4]  # each prompt's own count
    with pytest.raises(errors.BudgetExceeded, match=r"over the budget of 1\.00"):
        client._prepare_sweep(
            prompts=["Generate 2 images of a cat", "Generate 4 images of a dog"],
            seeds=[1, 2, 3],
            models=["seedream-4.0", "seedream-4.5"],
            budget="1.00",
        )
    with pytest.raises(SweepInvalid) as info:
        client._prepare_sweep(
            prompts=["Generate 2 images of a cat"], counts=[2, 3], sizes=["2K", "16:9"], models=["seedream-4.0"]
        )
    assert "run 1" in str(info.value) and "size" in str(info.value)
    assert not client.runs() and emu.counters.submits == 0


def test_sweep_stops_sending_after_an_auth_failure(emu: EmulatorServer) -> None:
    refused_before_sending: list[int] = []  # the catalog and the balance are asked (and refused) while preparing

    async def go() -> list[seqnb.AsyncRun]:
        client = AsyncClient("wrong-token", emu.base_url, retry=FAST_RETRY)
        runs = client._prepare_sweep(prompts=["Generate 2 images of a cat"], seeds=range(10))
        refused_before_sending.append(emu.counters.unauthorized)
        await client._send_all(runs, concurrency=1)
        await client.aclose()
        return list(runs)

    runs = arun(go())
    assert all(r.status == "failed" for r in runs)
    assert emu.counters.unauthorized - refused_before_sending[0] == 1  # the other nine were never sent
    assert "an earlier submit failed" in (runs[-1].error or "")


# --- sync facade ---------------------------------------------------------------------------------


def test_sync_facade_returns_at_once_and_drives_the_async_core(emu: EmulatorServer) -> None:
    client = seqnb.connect(emu.token, emu.base_url, retry=FAST_RETRY)
    assert not client._runner.attached
    events: list[RunEvent] = []
    client.subscribe(events.append)
    runs = client.sweep(prompts=["Generate 2 images of a cat"], seeds=range(6), quiet=True)
    assert all(not r.done for r in runs)  # returned before any run could end: sending goes on in the background
    client.wait_all(runs, timeout=30)
    assert all(r.status == "completed" and len(r.images) == 2 for r in runs)
    assert {e.new for e in events} >= {"created", "submitting", "in_queue", "completed"}
    assert client.runs()[0] is runs[0]
    client.close()


# --- poll timing (pure) -------------------------------------------------------------------------


def test_next_delay_backs_off_caps_and_aims_at_the_expected_end() -> None:
    p = PollPolicy(jitter=0.0)
    assert next_delay(p, "in_progress", 0, None) == p.fast
    assert next_delay(p, "in_progress", 3, None) == pytest.approx(min(p.cap_running, p.fast * p.growth**3))
    assert next_delay(p, "in_progress", 50, None) == p.cap_running
    assert next_delay(p, "in_queue", 50, None) == p.cap_queued
    assert next_delay(p, "in_progress", 0, 7.0) == pytest.approx(7.0 - p.margin)
    assert next_delay(p, "in_progress", 9, -0.5) == p.fast
    assert next_delay(p, "in_progress", 9, 500.0) == p.cap_far
    # a thousand runs of one kind with no duration known yet share group_rate calls per second
    assert next_delay(p, "in_progress", 0, None, siblings=1000) == pytest.approx(1000 / p.group_rate)
    assert next_delay(p, "in_progress", 0, None, siblings=3) == p.fast


# --- regressions of issue #11 (emulator) ----------------------------------------------------------


def test_a_prompt_that_cannot_be_encoded_fails_not_sent_naming_the_prompt(emu: EmulatorServer) -> None:
    async def go() -> seqnb.AsyncRun:
        client = client_for(emu)
        request = seqnb.Request("seedream-4.5", "Generate 2 images of a fox \ud800", count=2, seed=1)
        with pytest.raises(seqnb.RequestInvalid, match="lone surrogate"):  # validation names it first
            client._prepare(request)
        run = client._adopt(seqnb.AsyncRun(request=request))  # and past validation, the transport still refuses it
        with pytest.raises(errors.SeqnbError):
            await client._send(run)
        await asyncio.wait_for(run.wait(), 5)
        await client.aclose()
        return run

    run = arun(go())
    assert run.status == "failed" and (run.error or "").startswith("not sent")
    assert "prompt" in (run.error or "") and emu.counters.submits == 0


def test_http_200_with_an_error_code_on_submit_is_a_refusal_not_a_doubt(emu: EmulatorServer) -> None:
    emu.set_faults(Faults(error_200=1.0), route="submit")

    async def go() -> seqnb.AsyncRun:
        client = client_for(emu)
        run = client._prepare(req())
        with pytest.raises(errors.APIError):
            await client._send(run)
        await client.aclose()
        return run

    run = arun(go())
    assert run.status == "failed" and (run.error or "").startswith("not accepted, not charged")
    assert emu.counters.faults["submit.error_200"] == 1  # not retried


def test_a_cancel_goes_out_at_once_while_the_client_is_slowed_down() -> None:
    with emulator(queue_wait=30) as emu:
        emu.set_faults(Faults(rate_limit=1.0, retry_after=3600), route="status")

        async def go() -> str:
            client = client_for(emu)  # Retry-After capped at the default 60 s
            run = await client.submit(req())
            while emu.counters.faults["status.rate_limit"] == 0:
                await asyncio.sleep(0.02)
            outcome = await asyncio.wait_for(run.cancel(), 10)  # not behind the 429 gate
            assert run.status == "cancelled"
            await client.aclose()
            return outcome

        assert arun(go()) == "cancelled" and emu.counters.cancels == 1


def test_retry_after_is_capped_and_read_in_both_forms() -> None:
    from email.utils import format_datetime

    policy = RetryPolicy(max_retry_after=60)
    now = time.time()
    assert policy.retry_after("3600") == 60 and policy.retry_after("2.5") == 2.5 and policy.retry_after("-1") == 0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert 25 <= (policy.retry_after(date) or 0) <= 31
    assert policy.retry_after("soon") is None and policy.retry_after(None) is None


def test_sync_waits_raise_seqnb_timeout_saying_the_run_goes_on() -> None:
    with emulator(queue_wait=30) as emu:
        client = seqnb.connect(emu.token, emu.base_url, retry=FAST_RETRY)
        run = client.submit(req())
        with pytest.raises(seqnb.SeqnbError) as info:
            run.wait(0.2)
        assert isinstance(info.value, seqnb.WaitTimeout) and "keeps running" in str(info.value)
        with pytest.raises(seqnb.WaitTimeout, match="go on"):
            client.wait_all(timeout=0.2)
        with pytest.raises(seqnb.WaitTimeout, match="go on"):
            client._run(asyncio.sleep(5), timeout=0.1)
        assert not run.done
        client.close()


def test_wait_all_raises_seqnb_timeout() -> None:
    with emulator(queue_wait=30) as emu:

        async def go() -> None:
            client = client_for(emu)
            run = await client.submit(req())
            with pytest.raises(seqnb.WaitTimeout, match="1 of 1 runs"):
                await client.wait_all([run], timeout=0.2)
            await client.aclose()

        arun(go())
