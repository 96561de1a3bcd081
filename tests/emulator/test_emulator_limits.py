"""The emulator's input bounds over real HTTP: a body cap enforced while reading, and no request holding up the rest.

The cap is RunComfy's 64 MiB by default (inline reference images included); these tests set 1 MiB, the same code.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import seqnb.emulator.app as emulator_app
from seqnb.emulator import BODY_LIMIT, EmulatorServer
from seqnb.model.references import MAX_REQUEST_BYTES
from seqnb.model.spec import ModelSpec
from tests.conftest import M40, M45

LIMIT = 1024 * 1024
pytestmark = pytest.mark.seqnb_emulator(body_limit=LIMIT)


def test_the_cap_is_runcomfys_64_mib_by_default() -> None:
    assert BODY_LIMIT == MAX_REQUEST_BYTES == 64 * 2**20


def read_answer(raw: socket.socket) -> str:
    """One answer: its head and its Content-Length of body (read as it arrives, before the server closes)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = raw.recv(65536)
        assert chunk, f"connection closed mid-answer: {data!r}"
        data += chunk
    return data.decode("latin-1")


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    return next(int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.startswith("content-length:"))


def test_a_body_declared_too_large_is_refused_before_it_is_read(emu: EmulatorServer, http: httpx.Client) -> None:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as raw:
        raw.sendall(
            f"POST /v1/models/{M45} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emu.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {10 * LIMIT}\r\n\r\n".encode()
        )  # and not one byte of the body
        head = read_answer(raw)
    assert head.startswith("HTTP/1.1 413")
    body = json.loads(head.split("\r\n\r\n", 1)[1])
    assert body["error_code"] == 413001 and "1048576 bytes" in body["error_message"]
    assert emu.counters.too_large == 1 and emu.counters.submits == 0


def test_a_streamed_body_is_cut_off_once_it_passes_the_cap(emu: EmulatorServer) -> None:
    """Chunked, with no length given: the answer comes while the body is still unfinished."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as raw:
        raw.sendall(
            f"POST /v1/models/{M45} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {emu.token}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b" " * 65536
        for _ in range(LIMIT // len(chunk) + 1):
            raw.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        head = read_answer(raw)  # the closing 0-length chunk is never sent
    assert head.startswith("HTTP/1.1 413") and "413001" in head
    assert emu.counters.too_large == 1 and emu.counters.submits == 0


def test_bodies_up_to_the_cap_are_read_and_larger_ones_refused(http: httpx.Client) -> None:
    def body_of(size: int) -> bytes:
        payload = json.dumps({"prompt": "", "sequential_image_generation_options": 1}).encode()
        return payload[:-1] + b" " * (size - len(payload)) + b"}"

    headers = {"Content-Type": "application/json"}
    at_cap = http.post(f"/v1/models/{M45}", content=body_of(LIMIT), headers=headers)
    assert at_cap.status_code == 200, at_cap.text
    over = http.post(f"/v1/models/{M45}", content=body_of(LIMIT + 1), headers=headers)
    assert over.status_code == 413 and over.json()["error_code"] == 413001

    def streamed() -> Iterator[bytes]:
        data = body_of(LIMIT + 1)
        for i in range(0, len(data), 100_000):
            yield data[i : i + 100_000]

    assert http.post(f"/v1/models/{M45}", content=streamed(), headers=headers).status_code == 413


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nesting deeper than the parser's stack"),
        (b'{"seed": ' + b"9" * 50_000 + b"}", "a number past int's digit limit"),
        (b"\xff\xfe not utf-8", "bytes that are not text"),
    ],
)
def test_unreadable_json_is_a_400_never_a_500(http: httpx.Client, body: bytes, why: str) -> None:
    r = http.post(f"/v1/models/{M40}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, why
    assert "JSON" in r.json()["error_message"] and r.json()["error_code"] == 400000


def test_a_megabyte_prompt_full_of_counts_is_judged_on_the_schema_alone(http: httpx.Client) -> None:
    """seqnb's count rules are the client's guard; the service checks only the schema (here: too long)."""
    prompt = ("生成三张图片，" * 60_000)[: LIMIT // 4]
    r = http.post(f"/v1/models/{M45}", json={"prompt": prompt, "sequential_image_generation_options": 2})
    assert r.status_code == 422
    assert [(d["loc"], d["type"]) for d in r.json()["detail"]] == [(["body", "prompt"], "too_long")]


def test_a_submit_being_validated_does_not_hold_up_other_calls(
    emu: EmulatorServer, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation runs in a worker thread: while one submit is held inside it, a status call still answers."""
    rid = http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a fox"}).json()["request_id"]
    inside, release = threading.Event(), threading.Event()
    real = emulator_app.server_problems

    def held(spec: ModelSpec, payload: dict[str, Any]) -> Any:
        inside.set()
        release.wait(20)
        return real(spec, payload)

    monkeypatch.setattr(emulator_app, "server_problems", held)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(http.post, f"/v1/models/{M40}", json={"text": "Generate 2 images of a fox"})
        try:
            assert inside.wait(10), "the submit never reached validation"
            # on the event loop, validation would block this call until release: it would time out
            status = http.get(f"/v1/requests/{rid}/status", timeout=5)
            assert status.status_code == 200 and status.json()["request_id"] == rid
            assert not pending.done()
        finally:
            release.set()
        assert pending.result(timeout=10).status_code == 200
    assert emu.counters.submits == 2
