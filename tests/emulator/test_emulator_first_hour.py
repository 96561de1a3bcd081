"""What a newcomer meets with curl (issue #23): error codes on every refused body, the right field's name, a console log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from seqnb.emulator import EmulatorServer
from seqnb.model.validation import validate_payload
from tests.conftest import M40, M45

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_no_json_object_has_an_error_code(http: httpx.Client, body: bytes) -> None:
    r = http.post(f"/v1/models/{M40}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == 400000 and r.json()["error_message"]


def test_a_4_0_submit_with_prompt_is_told_its_field_is_text(emu: EmulatorServer, http: httpx.Client) -> None:
    r = http.post(f"/v1/models/{M40}", json={"prompt": "Generate 2 images of a cat"})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "text"]
    assert "'text', not 'prompt'" in detail["msg"], detail
    r = http.post(
        f"/v1/models/{M45}", json={"text": "Generate 2 images of a cat", "sequential_image_generation_options": 2}
    )
    assert r.status_code == 422 and "'prompt', not 'text'" in r.json()["detail"][0]["msg"]


def test_seqnb_validate_names_the_right_field() -> None:
    report = validate_payload("seedream-4.0", {"prompt": "Generate 2 images of a cat"})
    (problem,) = report.errors
    assert problem.wire == "text" and "field is 'text', not 'prompt': rename it" in problem.message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_seqnb_emulator_logs_each_request_on_its_console(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "console.txt").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqnb.cli", "emulator", "--port", str(port)], stdout=log, stderr=log, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/requests/nope/status", headers={"Authorization": "Bearer sekrit-42"}
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, Path(log.name).read_text()
                time.sleep(0.1)
        assert r.status_code == 404
        while "/v1/requests/nope/status" not in Path(log.name).read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        # without --token, the controls take the secret it printed (any page could send any other token)
        secret = (
            Path(log.name).read_text().split("controls and uploads (/_emulator/*, POST /files): Bearer ")[1].split()[0]
        )
        restart = f"http://127.0.0.1:{port}/_emulator/restart"
        assert httpx.post(restart, headers={"Authorization": "Bearer sekrit-42"}).status_code == 401
        assert httpx.post(restart, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    console = Path(log.name).read_text()
    line = next(x for x in console.splitlines() if "/v1/requests/nope/status" in x)
    assert "GET" in line and "404" in line, console
    assert "sekrit-42" not in console  # the token the call sent is never logged


def test_the_embedded_emulator_logs_nothing(capfd: pytest.CaptureFixture[str], emu: EmulatorServer) -> None:
    httpx.get(f"{emu.base_url}/v1/requests/nope/status", headers={"Authorization": f"Bearer {emu.token}"})
    captured = capfd.readouterr()
    assert "/v1/requests/nope/status" not in captured.out + captured.err
