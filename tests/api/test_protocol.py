"""The protocol layer (I/O-free): whatever the service answers becomes seqnb's model, or a clear problem."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

import seqnb
from seqnb.api import protocol
from seqnb.model.validation import unencodable
from seqnb.runs.run import RunCore


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05.000Z"),
        ("2025-01-02T03:04:05.123456+00:00", "2025-01-02T03:04:05.123Z"),
        ("2025-01-02T04:04:05+01:00", "2025-01-02T03:04:05.000Z"),
        ("2025-01-02 03:04:05", "2025-01-02T03:04:05.000Z"),  # naive means UTC
        (1735787045, "2025-01-02T03:04:05.000Z"),
        (1735787045.25, "2025-01-02T03:04:05.250Z"),
        (1735787045250, "2025-01-02T03:04:05.250Z"),  # milliseconds
        ("1735787045", "2025-01-02T03:04:05.000Z"),
        (None, None),
        (True, None),
        ("", None),
        ("yesterday", None),
        ("0001-01-01T00:00:00Z", None),  # outside what the ledger can hold
        (math.nan, None),
        (math.inf, None),
        (-5, None),
        (10**30, None),
        ([2025], None),
        ({"t": 1}, None),
    ],
)
def test_timestamps_become_iso_utc_or_nothing(value: Any, expected: str | None) -> None:
    assert protocol.iso_time(value) == expected


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("3f2a-11ee-8c90", True),
        ("req_01HQ-abc_1", True),
        ("x" * 128, True),
        (12345, True),
        ("req.1", False),  # RunComfy's own rule: [a-zA-Z0-9_-]{1,128}
        ("req:1", False),
        ("a~b", False),
        ("abc\r\nX-Evil: 1", False),
        ("a b", False),
        ("a/b", False),
        ("..", False),
        ("a?b", False),
        ("a%2fb", False),
        ("é", False),
        ("", False),
        ("x" * 129, False),
        (True, False),
        (1.5, False),
        (None, False),
        (["a"], False),
    ],
)
def test_request_ids_are_checked_by_runcomfys_rule_before_they_go_into_a_url(value: Any, ok: bool) -> None:
    assert (protocol.request_id(value) == str(value)) is ok
    if not ok:
        assert protocol.request_id(value) is None


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        ({"images": ["u1", "u2"]}, ["u1", "u2"]),
        ({"images": "u1"}, ["u1"]),
        ({"images": [{"url": "u1"}, "u2", 5, None, {"x": 1}]}, ["u1", "u2"]),
        ({"image": "u1"}, ["u1"]),
        ({"image": {"url": "u1"}}, ["u1"]),
        ({"images": [], "image": "u1"}, ["u1"]),
        (["u1", {"url": "u2"}], ["u1", "u2"]),
        ("u1", ["u1"]),
        ({"images": []}, []),
        (None, []),
        ({}, None),
        (42, None),
        (True, None),
        ("", None),
        ("a b\r\n", None),
        ([1, 2], None),
        ({"images": [1]}, None),
        ({"videos": ["v"]}, None),
    ],
)
def test_image_urls_from_every_output_shape(output: Any, urls: list[str] | None) -> None:
    assert protocol.image_urls(output) == urls


def test_status_answers() -> None:
    seen = protocol.read_status({"status": "IN_QUEUE", "queue_position": 3, "surprise": {"x": 1}})
    assert seen.status == "in_queue" and seen.queue_position == 3 and seen.problem is None
    assert protocol.read_status({"status": "running", "queue_position": 2}).queue_position is None
    for odd in ({"status": "in_queue", "queue_position": "3"}, {"status": "in_queue", "queue_position": True}):
        assert protocol.read_status(odd).queue_position is None
    for unreadable in (None, [], "completed", 5, {"status": "sleeping"}, {"status": ["completed"]}, {}):
        seen = protocol.read_status(unreadable)
        assert seen.status is None and seen.problem and len(seen.problem) < 400


def test_result_answers() -> None:
    done = protocol.read_result({"status": "succeeded", "output": ["u"], "created_at": 1735787045, "finished_at": "x"})
    assert done.status == "completed" and done.images == ("u",)
    assert done.created_at == "2025-01-02T03:04:05.000Z" and done.finished_at is None
    bad = protocol.read_result({"status": "completed", "output": {"data": "x" * 5000}})
    assert bad.status == "failed" and bad.error and "output" in bad.error and len(bad.error) < 500
    for error, text in [({"message": "boom"}, "boom"), ("boom", "boom"), (None, "failed"), (["a", "b"], "a")]:
        failed = protocol.read_result({"status": "failed", "error": error})
        assert failed.status == "failed" and text in (failed.error or "")


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (0.12, Decimal("0.12")),
        (0, Decimal(0)),
        (3, Decimal(3)),
        (1e-7, Decimal("1E-7")),
        ("0.12", None),  # a string is no amount, as RunComfy's own nodes read it
        (-0.01, None),
        (math.nan, None),
        (math.inf, None),
        (True, None),
        ([0.12], None),
        ({"usd": 0.12}, None),
        (None, None),
    ],
)
def test_a_cost_is_a_finite_non_negative_number_or_unknown_with_a_problem(cost: Any, expected: Decimal | None) -> None:
    body = {"status": "completed", "output": {"images": ["https://x.test/a.png"]}, "cost": cost}
    seen = protocol.read_result(body)
    assert seen.status == "completed" and seen.cost == expected
    assert (seen.cost_problem is None) is (expected is not None)
    if expected is None:
        assert "estimate" in (seen.cost_problem or "")
    assert protocol.read_cost({"status": "completed"}) == (None, protocol.read_cost({})[1])  # missing: unknown
    failed = protocol.read_result({"status": "failed", "error": "x", "cost": cost})
    cancelled = protocol.read_result({"status": "canceled", "cost": cost})
    assert failed.cost == expected and cancelled.status == "cancelled" and cancelled.cost == expected
    running = protocol.read_result({"status": "in_progress", "cost": cost})
    assert running.cost is None and running.cost_problem is None  # a run not yet ended has no cost to say


def test_cancel_answers() -> None:
    assert protocol.read_cancel({"outcome": "cancelled"}).outcome == "cancelled"
    assert protocol.read_cancel({"status": "canceled"}).outcome == "cancelled"
    assert protocol.read_cancel({"outcome": "not_cancellable", "status": "in_progress"}).outcome == "not_cancellable"
    assert protocol.read_cancel({"status": "completed"}).outcome == "not_cancellable"
    unclear = protocol.read_cancel(["?"])
    assert unclear.outcome is None and unclear.problem


def test_error_bodies_never_break_the_reader() -> None:
    for body in (
        {"detail": [{"loc": 5, "msg": "x"}]},
        {"detail": [{"loc": [["a"], {"b": 1}], "msg": "x"}]},
        {"error_code": {"x": 1}, "message": "m"},
        {"error_code": [1], "detail": None},
        [1, 2],
        "text",
        None,
    ):
        assert isinstance(protocol.error_message(body), str)
        protocol.error_fields(body)
        protocol.error_code(body)
    assert protocol.error_code({"error_code": "400001"}) == (True, 400001)
    assert protocol.error_code({"error_code": 0}) == (False, None)
    assert protocol.error_code({"error_code": "weird"}) == (True, None)


def test_the_first_character_that_cannot_be_sent_is_found() -> None:
    assert next(unencodable({"text": "fine", "seed": 1}), None) is None
    where = next(unencodable({"seed": 1, "text": "ab\ud800c"}), None)
    assert where == ("text", 2, "\ud800")


# --- the state machine checks before it writes ------------------------------------------------


def test_a_refused_transition_writes_nothing() -> None:
    run = RunCore(request=seqnb.Request("seedream-4.5", "Generate 2 images of a fox", count=2))
    seen: list[str] = []
    run.subscribe(lambda e: seen.append(e.new))
    assert run.transition("submitting") and run.transition("in_queue", request_id="r")
    assert run.transition("completed", images=["u1", "u2"])
    assert not run.transition("failed", error="late failure", images=[])
    assert run.status == "completed" and run.images == ["u1", "u2"] and run.error is None
    assert seen == ["submitting", "in_queue", "completed"]
    assert not hasattr(run, "polls")
