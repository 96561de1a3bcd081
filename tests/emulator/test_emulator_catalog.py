"""The emulator's catalog (/v1/models...) and balance (/prod/v2/balance) routes, and its version header, over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import seqnb
from seqnb.emulator import VERSION_HEADER, EmulatorServer, Faults
from seqnb.emulator.catalog import VALIDATIONS
from seqnb.model.spec import get_model
from tests.conftest import E40, E45, M40, M45
from tests.seed_pages import page_schema

from .test_emulator import on_clock


def test_one_entry_with_its_input_schema(http: httpx.Client) -> None:
    r = http.get(f"/v1/models/{M45}")
    assert r.status_code == 200
    entry = r.json()
    assert entry["model_id"] == M45 and entry["display_name"] == "Seedream 4.5 sequential"
    assert entry["categories"] == ["text-to-image"]
    assert entry["base_price_usd"] == 0.04 and entry["price_unit"] == "image"
    assert entry["input_schema"] == page_schema(M45)
    assert http.get(f"/v1/models/{M40}").json()["input_schema"] == page_schema(M40)


def test_unknown_model_is_runcomfys_error(http: httpx.Client) -> None:
    for path in ("/v1/models/bytedance/seedream-9/sequential", "/v1/models/bytedance/seedream-4-5"):
        r = http.get(path)
        assert r.status_code == 404
        assert r.json()["error_code"] == 400001 and "Invalid model id" in r.json()["error_message"]


def test_list_search_filters_and_pages(http: httpx.Client) -> None:
    def ids(**params: Any) -> tuple[list[str], int]:
        r = http.get("/v1/models", params=params)
        assert r.status_code == 200, r.text
        return [m["model_id"] for m in r.json()["models"]], r.json()["total"]

    assert ids() == ([M40, M45, E40, E45], 4)
    assert ids(limit=1) == ([M40], 4)
    assert ids(limit=1, offset=1) == ([M45], 4)
    assert ids(limit=1, offset=4) == ([], 4)
    assert ids(search="seedream-4-5") == ([M45, E45], 2)
    assert ids(search="SEEDREAM") == ([M40, M45, E40, E45], 4)
    assert ids(search="4.0 sequential") == ([M40], 1)  # the display name
    assert ids(search="edit-sequential") == ([E40, E45], 2)
    assert ids(search="flux") == ([], 0)
    assert ids(category="text-to-image") == ([M40, M45, E40, E45], 4)
    assert ids(category="text-to-video") == ([], 0)
    assert ids(kind="image", search="4-0/seq") == ([M40], 1)
    assert ids(kind="video") == ([], 0)


def test_list_gives_schemas_only_when_asked(http: httpx.Client) -> None:
    plain = http.get("/v1/models").json()["models"]
    assert all("input_schema" not in m for m in plain)
    assert {m["model_id"]: m["base_price_usd"] for m in plain} == {M40: 0.03, M45: 0.04, E40: 0.03, E45: 0.04}
    full = http.get("/v1/models", params={"include_schema": "true"}).json()["models"]
    assert [m["input_schema"] for m in full] == [page_schema(M40), page_schema(M45), *map(edit_schema, (E40, E45))]


def edit_schema(model: str) -> dict[str, Any]:
    """An edit-sequential model's file schema, its references field given the emulator's own rules."""
    schema = get_model(model).input_schema()
    schema["properties"]["images"]["validations"] = [dict(v) for v in VALIDATIONS]
    return schema


@pytest.mark.parametrize(("model", "most"), [(E40, 10), (E45, 14)])
def test_an_edit_models_images_are_image_uris_with_their_count_and_the_emulators_rules(
    http: httpx.Client, model: str, most: int
) -> None:
    """As RunComfy's catalog describes a media field: ``format: image_uris``, ``maxItems``, and ``validations``."""
    images = http.get(f"/v1/models/{model}").json()["input_schema"]["properties"]["images"]
    assert images["format"] == "image_uris" and images["maxItems"] == most
    rules = {v["validation_rule"]: v["validation_value"] for v in images["validations"]}
    assert rules == {"width_pixels>": 14, "height_pixels>": 14, "width/height<": 16, "width/height>": 0.0625}
    assert all(v["validation_error"] for v in images["validations"])


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "x"}, "limit"),
        ({"include_schema": "yes"}, "include_schema"),
    ],
)
def test_bad_list_queries_are_400s(http: httpx.Client, params: dict[str, str], named: str) -> None:
    r = http.get("/v1/models", params=params)
    assert r.status_code == 400 and named in r.json()["error_message"]


def test_categories_and_routes_that_share_a_prefix(http: httpx.Client) -> None:
    assert http.get("/v1/models/categories").json() == {"categories": ["text-to-image"]}
    r = http.post("/v1/models/categories", json={"prompt": "Generate 1 image"})  # a submit, to no model
    assert r.status_code == 400 and r.json()["error_code"] == 400001
    assert http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a"}).status_code == 200


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/categories", f"/v1/models/{M45}", "/prod/v2/balance"])
def test_catalog_and_balance_need_the_token(emu: EmulatorServer, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        r = httpx.get(emu.base_url + path, headers=headers)
        assert r.status_code == 401 and r.json()["error_code"] == 400004
    assert emu.counters.unauthorized == 2


def test_prices_come_from_the_config() -> None:
    with on_clock(prices={"seedream-4.5": "0.05"}, balance="1") as (_, clock, http):
        assert http.get(f"/v1/models/{M45}").json()["base_price_usd"] == 0.05
        assert http.get(f"/v1/models/{M40}").json()["base_price_usd"] == 0.03
        http.post(f"/v1/models/{M45}", json={"prompt": "Generate 4 images", "sequential_image_generation_options": 4})
        clock.advance(60)
        assert http.get("/prod/v2/balance").json() == {"balance_usd": 0.8, "currency": "USD"}


def test_balance_goes_down_as_runs_complete() -> None:
    with on_clock(workers=1, queue_wait=0, service_time=10, balance="1.00") as (_, clock, http):

        def balance() -> float:
            body = http.get("/prod/v2/balance").json()
            assert body["currency"] == "USD"
            return float(body["balance_usd"])

        def submit(count: int) -> httpx.Response:
            payload = {"prompt": f"Generate {count} images", "sequential_image_generation_options": count}
            return http.post(f"/v1/models/{M45}", json=payload)

        first = submit(5).json()["request_id"]  # 0.20, running
        queued = submit(5).json()["request_id"]  # 0.20, queued behind it
        assert balance() == 1.0  # nothing has completed
        clock.advance(10)
        assert balance() == 0.8
        clock.advance(10)
        assert balance() == 0.6
        assert http.post(f"/v1/requests/{first}/cancel").json()["outcome"] == "not_cancellable"
        submit(10)  # 0.40, running at once (the worker is free)
        fourth = submit(5).json()["request_id"]  # 0.20, queued
        refused = submit(1)  # 0.04 more than the 0.60 left less the 0.60 pending
        assert refused.status_code == 400 and refused.json()["error_code"] == 400002
        assert "Insufficient balance" in refused.json()["error_message"]
        assert http.post(f"/v1/requests/{fourth}/cancel").json()["outcome"] == "cancelled"
        assert submit(1).status_code == 200  # the cancelled run freed its 0.20
        clock.advance(60)
        assert balance() == pytest.approx(0.16)
        assert queued != fourth


def test_failed_runs_cost_nothing_and_unlimited_counts_down_from_a_million() -> None:
    with on_clock(queue_wait=0, service_time=1, faults=Faults(fail=1.0), balance="0.10") as (_, clock, http):
        http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a"})
        clock.advance(2)
        assert http.get("/prod/v2/balance").json()["balance_usd"] == 0.1
    with on_clock(queue_wait=0, service_time=1) as (_, clock, http):
        http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a"})
        clock.advance(2)
        assert http.get("/prod/v2/balance").json()["balance_usd"] == 999999.91


def test_every_answer_names_the_emulator(emu: EmulatorServer, http: httpx.Client) -> None:
    rid = http.post(f"/v1/models/{M40}", json={"text": "Generate 3 images of a"}).json()["request_id"]
    answers = [
        http.get(f"/v1/requests/{rid}/status"),
        http.get(f"/v1/requests/{rid}/result"),
        http.post(f"/v1/requests/{rid}/cancel"),
        http.get("/v1/models"),
        http.get("/prod/v2/balance"),
        http.get("/_emulator/counters"),
        http.get("/no/such/route"),
        httpx.get(emu.base_url + "/v1/requests/x/status"),  # 401
        httpx.get(emu.base_url + "/files/nothing.jpg"),
        http.post(f"/v1/models/{M40}", content=b"x" * (2 << 20)),  # 413
    ]
    assert [r.headers.get(VERSION_HEADER) for r in answers] == [seqnb.__version__] * len(answers)
