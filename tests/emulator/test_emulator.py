"""The emulator over real loopback HTTP: routes, states, errors, cancel outcomes, images, faults, expiry.

Most tests run the emulator on a ``ManualClock``: jobs move on when the test advances it, so
nothing sleeps and nothing depends on the machine's speed. A few keep the real clock, to prove
the emulator's own clock drives it end to end.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from seqnb.emulator import EmulatorServer, Faults, ManualClock, is_loopback
from seqnb.testing import emulator
from tests.conftest import M40, M45

SEEDS = Path(__file__).parents[1] / "fixtures" / "seeds"


def submit(http: httpx.Client, model: str = M40, **payload: Any) -> str:
    body = payload or {"text": "Generate 3 images of a beautiful sunset over a calm ocean."}
    r = http.post(f"/v1/models/{model}", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


@contextmanager
def on_clock(**overrides: Any) -> Iterator[tuple[EmulatorServer, ManualClock, httpx.Client]]:
    """An emulator on a ManualClock, and a client that sends its token."""
    clock = ManualClock()
    with (
        emulator(clock=clock, **overrides) as emu,
        httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10) as http,
    ):
        yield emu, clock, http


def state_of(http: httpx.Client, rid: str) -> str:
    return str(http.get(f"/v1/requests/{rid}/status").json()["status"])


def seed_curls(page: str) -> list[str]:
    text = (SEEDS / page).read_text(encoding="utf-8")
    section = text[text.index("3. API reference") : text.index("4. File inputs")]
    return [m.group(0) for m in re.finditer(r"curl --request .*?(?=\n\n|\Z)", section, re.S)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("page", ["seedream-4-0-sequential.txt", "seedream-4-5-sequential.txt"])
def test_seed_page_curl_commands_work_verbatim(page: str) -> None:
    submit_cmd, status_cmd, result_cmd, cancel_cmd = seed_curls(page)
    clock = ManualClock()
    with emulator(token=None, workers=1, queue_wait=0.05, service_time=0.3, clock=clock) as emu:

        def run(cmd: str, rid: str = "") -> dict[str, Any]:
            cmd = cmd.replace("https://model-api.runcomfy.net", emu.base_url).replace("{request_id}", rid)
            out = subprocess.run(
                ["bash", "-c", cmd + " --silent --show-error"], capture_output=True, text=True, check=True
            )
            return dict(json.loads(out.stdout))

        first = run(submit_cmd)
        assert set(first) == {"request_id", "status_url", "result_url", "cancel_url"}
        second = run(submit_cmd)  # queued behind the first on the one worker
        assert run(status_cmd, second["request_id"])["status"] == "in_queue"
        assert run(cancel_cmd, second["request_id"]) == {
            "request_id": second["request_id"],
            "status": "cancelled",
            "outcome": "cancelled",
        }
        clock.advance(0.5)
        assert run(status_cmd, first["request_id"])["status"] == "completed"
        result = run(result_cmd, first["request_id"])
        assert result["status"] == "completed" and len(result["output"]["images"]) == 3
        assert emu.counters.submits == 2 and emu.counters.cancels == 1


def test_lifecycle_on_the_real_clock_moves_forward_only(http: httpx.Client) -> None:
    rid = submit(http)
    seen: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = http.get(f"/v1/requests/{rid}/status").json()
        assert body["request_id"] == rid and body["status_url"].endswith(f"/v1/requests/{rid}/status")
        assert ("queue_position" in body) == (body["status"] == "in_queue")
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] == "completed":
            break
        time.sleep(0.01)
    assert seen == ["in_queue", "in_progress", "completed"]


def test_lifecycle_changes_state_exactly_on_schedule() -> None:
    with on_clock(workers=1, queue_wait=1, base_seconds=1, seconds_per_image=1) as (_, clock, http):
        rid = submit(http)  # 3 images: queued 1 s, then runs 1 + 3 s
        body = http.get(f"/v1/requests/{rid}/status").json()
        assert body["status"] == "in_queue" and body["queue_position"] == 0
        clock.advance(0.999)
        assert state_of(http, rid) == "in_queue"
        clock.advance(0.001)
        body = http.get(f"/v1/requests/{rid}/status").json()
        assert body["status"] == "in_progress" and "queue_position" not in body
        clock.advance(3.999)
        assert state_of(http, rid) == "in_progress"
        clock.advance(0.001)
        assert state_of(http, rid) == "completed"
        result = http.get(f"/v1/requests/{rid}/result").json()
        assert result["status"] == "completed" and len(result["output"]["images"]) == 3


def test_result_before_completion_gives_the_current_state() -> None:
    with on_clock(queue_wait=5) as (_, _clock, http):
        rid = submit(http)
        body = http.get(f"/v1/requests/{rid}/result").json()
        assert body["status"] == "in_queue" and body["output"] is None and body["finished_at"] is None
        assert body["error"] is None and body["created_at"].endswith("Z")


def test_queue_position_counts_down() -> None:
    with on_clock(workers=1, queue_wait=0, service_time=10) as (_, clock, http):
        ids = [submit(http) for _ in range(4)]
        positions = [http.get(f"/v1/requests/{rid}/status").json().get("queue_position") for rid in ids]
        assert positions == [None, 0, 1, 2]  # the first is already running
        clock.advance(10)
        assert state_of(http, ids[1]) == "in_progress"
        assert [http.get(f"/v1/requests/{rid}/status").json().get("queue_position") for rid in ids[2:]] == [0, 1]


def test_cancel_outcomes() -> None:
    with on_clock(workers=1, queue_wait=0, service_time=10) as (emu, clock, http):
        running, queued = submit(http), submit(http)
        assert state_of(http, running) == "in_progress"
        assert http.post(f"/v1/requests/{running}/cancel").json() == {
            "request_id": running,
            "status": "in_progress",
            "outcome": "not_cancellable",
        }
        assert http.post(f"/v1/requests/{queued}/cancel").json()["outcome"] == "cancelled"
        assert http.post(f"/v1/requests/{queued}/cancel").json()["outcome"] == "cancelled"  # idempotent
        result = http.get(f"/v1/requests/{queued}/result").json()
        assert result["status"] == "cancelled" and result["output"] is None and result["finished_at"]
        clock.advance(10)
        done = http.post(f"/v1/requests/{running}/cancel").json()
        assert done["outcome"] == "not_cancellable" and done["status"] == "completed"
        assert emu.counters.cancels == 1 and emu.counters.cancel_calls == 4


def test_auth_on_every_call(emu: EmulatorServer, http: httpx.Client) -> None:
    rid = submit(http)
    anonymous = httpx.Client(base_url=emu.base_url)
    wrong = httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer not-the-token"})
    for client in (anonymous, wrong):
        for method, path in [
            ("POST", f"/v1/models/{M40}"),
            ("GET", f"/v1/requests/{rid}/status"),
            ("GET", f"/v1/requests/{rid}/result"),
            ("POST", f"/v1/requests/{rid}/cancel"),
        ]:
            r = client.request(method, path, json={"text": "Generate 1 image of a"})
            assert r.status_code == 401
            assert r.json()["error_code"] == 400004 and "Bearer" in r.json()["error_message"]
    assert emu.counters.submits == 1


def test_error_bodies(emu: EmulatorServer, http: httpx.Client) -> None:
    r = http.post("/v1/models/bytedance/seedream-9/sequential", json={"text": "a"})
    assert r.status_code == 400 and r.json()["error_code"] == 400001
    r = http.get("/v1/requests/0123456789abcdef/status")
    assert r.status_code == 404 and r.json()["error_code"] == 404001
    r = http.post(f"/v1/models/{M45}", json={"prompt": 3, "resolution": "8K"})
    assert r.status_code == 422
    locs = {tuple(d["loc"]) for d in r.json()["detail"]}
    assert locs == {("body", "prompt"), ("body", "resolution"), ("body", "sequential_image_generation_options")}
    r = http.post(f"/v1/models/{M45}", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error_message"] and r.json()["error_code"] == 400000
    # the service checks the schema; the count-in-prompt rule is seqnb's own guard
    assert (
        http.post(
            f"/v1/models/{M45}", json={"prompt": "Generate 5 images", "sequential_image_generation_options": 2}
        ).status_code
        == 200
    )
    assert emu.counters.submits == 1 and emu.counters.submits_rejected == 3


def test_insufficient_balance() -> None:
    with emulator(balance="0.10") as emu:
        http = httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"})
        assert (
            http.post(
                f"/v1/models/{M45}", json={"prompt": "Generate 2 images", "sequential_image_generation_options": 2}
            ).status_code
            == 200
        )
        r = http.post(
            f"/v1/models/{M45}", json={"prompt": "Generate 2 images", "sequential_image_generation_options": 2}
        )
        assert r.status_code == 400 and r.json()["error_code"] == 400002


def fetch_images(http: httpx.Client, clock: ManualClock, rid: str) -> list[bytes]:
    clock.advance(60)  # past any job's end
    urls = http.get(f"/v1/requests/{rid}/result").json()["output"]["images"]
    plain = httpx.Client()  # image URLs need no token
    return [plain.get(u).raise_for_status().content for u in urls]


def test_images_are_real_deterministic_and_sized() -> None:
    with on_clock() as (_, clock, http):
        check_images(http, clock)


def check_images(http: httpx.Client, clock: ManualClock) -> None:
    payload = {
        "text": "Generate 3 images of a lighthouse",
        "image_size": "1664:2496 (2:3)",
        "seed": 5,
        "sequential_image_generation_options": 3,
    }
    a = fetch_images(http, clock, submit(http, **payload))
    b = fetch_images(http, clock, submit(http, **payload))
    assert a == b and len(set(a)) == 3  # same series twice; frames differ
    for data in a:
        img = Image.open(io.BytesIO(data))
        assert img.format == "JPEG" and img.size == (1664, 2496)
    other = fetch_images(http, clock, submit(http, **{**payload, "seed": 6}))
    assert other[0] != a[0]
    wide = fetch_images(
        http,
        clock,
        submit(
            http,
            M45,
            prompt="Generate 1 image, widescreen 16:9",
            resolution="2K",
            sequential_image_generation_options=1,
        ),
    )
    assert Image.open(io.BytesIO(wide[0])).size == (2560, 1440)
    square = fetch_images(
        http,
        clock,
        submit(http, M45, prompt="Generate 1 image of a cat", resolution="2K", sequential_image_generation_options=1),
    )
    assert Image.open(io.BytesIO(square[0])).size == (2048, 2048)


def test_image_urls_expire() -> None:
    with on_clock(queue_wait=0, service_time=1, image_ttl=100) as (emu, clock, http):
        rid = submit(http)
        clock.advance(1)
        url = http.get(f"/v1/requests/{rid}/result").json()["output"]["images"][0]
        clock.advance(100)
        assert httpx.get(url).status_code == 200  # the last moment of its life
        clock.advance(0.001)
        assert httpx.get(url).status_code == 404
        assert emu.counters.files_expired == 1
        assert httpx.get(emu.base_url + "/files/unguessable.jpg").status_code == 404


def test_request_ids_expire_and_restart_forgets() -> None:
    with on_clock(queue_wait=0, service_time=1, request_ttl=50) as (_, clock, http):
        rid = submit(http)
        clock.advance(51)
        assert state_of(http, rid) == "completed"  # 50 s after its end: still known
        clock.advance(0.001)
        assert http.get(f"/v1/requests/{rid}/status").json()["error_code"] == 404001
        other = submit(http)
        assert http.post("/_emulator/restart").status_code == 200
        assert http.get(f"/v1/requests/{other}/result").status_code == 404


# --- faults -------------------------------------------------------------------------------------


def faulty(**faults: Any) -> Any:
    """An emulator on a ManualClock with these faults: yields (emu, clock, http)."""
    return on_clock(queue_wait=0, service_time=1, faults=Faults(**faults))


def test_fault_429_with_retry_after() -> None:
    with faulty(rate_limit=1.0, retry_after=2.5) as (emu, _, _http):
        r = httpx.post(
            f"{emu.base_url}/v1/models/{M40}", json={"text": "a"}, headers={"Authorization": f"Bearer {emu.token}"}
        )
        assert r.status_code == 429 and r.headers["Retry-After"] == "2.5"
        assert emu.counters.submits == 0 and emu.counters.faults["rate_limit"] == 1
        assert emu.counters.faults["submit.rate_limit"] == 1


def test_fault_5xx() -> None:
    with faulty(server_error=1.0) as (_, _clock, http):
        codes = {http.get("/v1/requests/x/status").status_code for _ in range(30)}
        assert codes == {500, 502, 503}


# A dropped connection reaches the client as a closed stream or, when the kernel answers unread bytes
# with a reset, as a read error: both are "no answer", and seqnb's transport treats them alike.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


def test_fault_dropped_connections() -> None:
    with faulty(drop=1.0, routes=("submit",)) as (emu, _, http):
        with pytest.raises(DROPPED):
            http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a"})
        assert emu.counters.submits == 0  # dropped before it was handled
        emu.set_faults(drop_after=1.0, routes=("submit",))
        with pytest.raises(DROPPED):
            http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a"})
        assert emu.counters.submits == 1  # handled, then the answer was lost: the job exists


def test_fault_slow_answers() -> None:
    with faulty(slow=1.0, slow_seconds=0.6, routes=("status",)) as (_, _clock, http):  # real seconds
        with pytest.raises(httpx.ReadTimeout):
            http.get("/v1/requests/x/status", timeout=0.2)
        start = time.monotonic()
        assert http.get("/v1/requests/x/status", timeout=5).status_code == 404
        assert time.monotonic() - start >= 0.55


def test_fault_http_200_with_error_code() -> None:
    with faulty(error_200=1.0, routes=("status",)) as (emu, _, _http):
        r = httpx.get(f"{emu.base_url}/v1/requests/x/status", headers={"Authorization": f"Bearer {emu.token}"})
        assert r.status_code == 200 and r.json()["error_code"] == 500001


def test_fault_failed_short_and_expired_jobs() -> None:
    with faulty(fail=1.0) as (_, clock, http):
        rid = submit(http)
        clock.advance(1)
        assert state_of(http, rid) == "failed"
        body = http.get(f"/v1/requests/{rid}/result").json()
        assert body["output"] is None and "failed" in body["error"]
    with faulty(short=1.0) as (_, clock, http):
        rid = submit(http, text="Generate 6 images of a", sequential_image_generation_options=6)
        clock.advance(1)
        assert 1 <= len(http.get(f"/v1/requests/{rid}/result").json()["output"]["images"]) < 6
    with faulty(expire=1.0) as (_, clock, http):
        rid = submit(http)
        clock.advance(1)
        url = http.get(f"/v1/requests/{rid}/result").json()["output"]["images"][0]
        clock.advance(0.001)  # any moment after completion
        assert httpx.get(url).status_code == 404


def test_faults_are_deterministic_from_their_seed() -> None:
    def outcomes(seed: int) -> list[int]:
        with faulty(rate_limit=0.2, server_error=0.2, error_200=0.2, seed=seed) as (_, _clock, http):
            return [
                http.get("/v1/requests/x/status").status_code * 1000 + len(http.get("/v1/requests/y/status").content)
                for _ in range(40)
            ]

    assert outcomes(7) == outcomes(7)
    assert outcomes(7) != outcomes(8)


def test_faults_switch_at_run_time_over_http(http: httpx.Client) -> None:
    r = http.post("/_emulator/faults", json={"rate_limit": 1.0, "routes": ["status"]})
    assert r.status_code == 200
    assert http.get("/v1/requests/x/status").status_code == 429
    assert http.post("/_emulator/faults", json={"rate_limit": 2}).status_code == 400
    http.post("/_emulator/faults", json={})
    assert http.get("/v1/requests/x/status").status_code == 404
    counters = http.get("/_emulator/counters").json()
    assert counters["status_calls"] == 2 and counters["faults"] == {"rate_limit": 1, "status.rate_limit": 1}


def test_listens_on_loopback_only_by_default(emu: EmulatorServer) -> None:
    assert emu.base_url.startswith("http://127.0.0.1:")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


def test_cli_serves_and_warns_beyond_loopback(tmp_path: Path) -> None:
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqnb.cli", "emulator", "--port", str(port), "--token", "t0k", "--speed", "50"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1/models/{M40}",
                    json={"text": "Generate 3 images of a"},
                    headers={"Authorization": "Bearer t0k"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "emulator CLI did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/v1/requests/x/status", headers={"Authorization": "Bearer other"}
            ).status_code
            == 401
        )
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.stderr is not None and "any Bearer token" not in proc.stderr.read()
