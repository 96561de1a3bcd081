"""Prices from the service's catalog, over real HTTP: used and shown, cached on disk, and never in the way of a submit."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

import seqnb
from seqnb.api.catalog.drift import SchemaDriftWarning, schema_drift
from seqnb.api.catalog.entry import TTL, CatalogEntry, CatalogWarning
from seqnb.api.catalog.service import catalog_cache_path
from seqnb.emulator import EmulatorServer
from seqnb.emulator import catalog as emulated_catalog
from seqnb.model.pricing import Price
from seqnb.model.request import PricedRequest
from seqnb.model.spec import get_model, spec_from_schema
from seqnb.testing import FAST, emulator
from tests.seed_pages import page_schema

M40 = "bytedance/seedream-4-0/sequential"
M45 = "bytedance/seedream-4-5/sequential"
FOX = "Generate 3 images of a fox"

CatalogHandler = Callable[[str], Awaitable[Response]]


@contextmanager
def tampered(handler: CatalogHandler, **overrides: Any) -> Iterator[EmulatorServer]:
    """The emulator, its catalog entries answered by ``handler(model_id)`` instead (a 500, a hang, a changed entry)."""
    server = EmulatorServer(**{**FAST, **overrides})
    inner = server.app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "GET" and path.startswith("/v1/models/"):
            response = await handler(path.removeprefix("/v1/models/"))
            await response(scope, receive, send)
            return
        await inner(scope, receive, send)

    server.app = app  # type: ignore[assignment]
    with server:
        yield server


def changed_entry(change: Callable[[dict[str, Any]], None]) -> CatalogHandler:
    """A handler answering the emulator's own entry, changed by ``change``."""

    async def handler(model_id: str) -> Response:
        spec = get_model(model_id)
        body = json.loads(json.dumps(emulated_catalog.entry(spec, spec.price_per_image, include_schema=True)))
        change(body)
        return JSONResponse(body)

    return handler


def connected(emu: EmulatorServer, tmp_path: Path, **kw: Any) -> seqnb.Client:
    return seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "ledger.sqlite", download=False, **kw)


def test_estimates_use_the_catalogs_price_and_say_where_it_comes_from(tmp_path: Path) -> None:
    with emulator(**FAST, prices={"seedream-4.5": "0.05"}) as emu:
        client = connected(emu, tmp_path)
        price = client.price("seedream-4.5")
        assert (price.per_image, price.currency) == (Decimal("0.05"), "USD")
        assert price.source.startswith("emulator catalog, fetched ") and price.source.endswith(" UTC")
        assert client.price("seedream-4.0").per_image == Decimal("0.03")  # its list price, from the catalog too
        assert client.cost(seqnb.Request("seedream-4.5", FOX, count=3)).amount == Decimal("0.15")
        # plans and budgets
        plan = client.plan(prompts=["Generate 2 images of a fox"], seeds=[1, 2])
        assert plan.total == {"USD": Decimal("0.20")} and plan.costs[0].source == price.source
        with pytest.raises(seqnb.BudgetExceeded, match=r"USD 0\.20"):
            client.sweep(prompts=["Generate 2 images of a fox"], seeds=[1, 2], budget="0.15", quiet=True)
        # the ledger's est_cost, for a submit and for a sweep
        run = client.submit(seqnb.Request("seedream-4.5", FOX, count=3, seed=1)).wait(30)
        sweep = client.sweep(prompts=["Generate 2 images of a fox"], seeds=[3], quiet=True)
        client.wait_all(sweep, timeout=30)
        assert client.ledger is not None
        frame = client.ledger.runs().set_index("id")
        assert float(frame.loc[run.id, "est_cost"]) == pytest.approx(0.15)
        assert float(frame.loc[sweep[0].id, "est_cost"]) == pytest.approx(0.10)
        assert emu.counters.catalog_calls == 4  # one entry per model, read once for every estimate above
        client.close()


def test_user_prices_still_win_and_then_the_catalog_is_not_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEQNB_PRICES", "seedream-4.0=0.02,seedream-4.0-edit=0.02")
    with emulator(**FAST, prices={"seedream-4.5": "0.05"}) as emu:
        client = connected(emu, tmp_path, prices={"seedream-4.5": "0.07 EUR", "seedream-4.5-edit": "0.07 EUR"})
        assert client.price("seedream-4.5") == Price(Decimal("0.07"), "EUR", "argument")
        assert client.price("seedream-4.0") == Price(Decimal("0.02"), "USD", "SEQNB_PRICES")
        assert client.plan(prompts=["Generate 2 images of a fox"]).total == {"EUR": Decimal("0.14")}
        run = client.submit(seqnb.Request("seedream-4.5", FOX, count=3, seed=1)).wait(30)
        assert client.ledger is not None
        row = client.ledger.runs().set_index("id").loc[run.id]
        assert (float(row["est_cost"]), row["currency"]) == (pytest.approx(0.21), "EUR")
        assert emu.counters.catalog_calls == 0
        client.close()


def test_the_catalog_is_kept_on_disk_for_a_day_and_can_be_read_again(tmp_path: Path) -> None:
    with emulator(**FAST, prices={"seedream-4.5": "0.05"}) as emu:
        first = seqnb.Client(emu.token, emu.base_url)
        fetched = first.price("seedream-4.5")
        path = catalog_cache_path()
        assert path.is_file() and path.parent == Path(os.environ["SEQNB_CACHE"])  # next to the images
        stored = json.loads(path.read_text())
        assert f"{emu.base_url}/v1 {M45}" in stored["entries"]
        assert emu.counters.catalog_calls == 4  # one entry per model

        second = seqnb.Client(emu.token, emu.base_url)
        assert second.price("seedream-4.5") == fetched  # from disk: same figure, same "fetched" time
        assert emu.counters.catalog_calls == 4
        second.refresh_prices()
        assert emu.counters.catalog_calls == 8

        for record in stored["entries"].values():  # a day later
            record["fetched_at"] -= TTL + 1
        path.write_text(json.dumps(stored))
        third = seqnb.Client(emu.token, emu.base_url)
        assert third.price("seedream-4.5").per_image == Decimal("0.05")
        assert emu.counters.catalog_calls == 12
        assert not list(path.parent.glob(".tmp-catalog-*"))  # atomic writes leave nothing behind
        for client in (first, second, third):
            client.close()


async def _server_error(model_id: str) -> Response:
    return JSONResponse({"error_message": "catalog down (test)"}, status_code=500)


async def _not_json(model_id: str) -> Response:
    return Response(b"<html>maintenance</html>", media_type="text/html")


@pytest.mark.parametrize("fault", ["500", "hang", "not json"])
def test_an_unreachable_catalog_falls_back_to_the_built_in_price_and_never_blocks_a_submit(
    fault: str, tmp_path: Path
) -> None:
    released = threading.Event()

    async def hang(model_id: str) -> Response:
        while not released.is_set():
            await asyncio.sleep(0.02)
        return JSONResponse({})

    handler = {"500": _server_error, "hang": hang, "not json": _not_json}[fault]
    with tampered(handler) as emu:
        client = connected(emu, tmp_path)
        client.aio.catalog.deadline = 0.3
        price = client.price("seedream-4.5")
        assert price.per_image == Decimal("0.04")
        assert price.source.startswith("built-in list price, catalog unavailable"), price.source
        run = client.submit(seqnb.Request("seedream-4.5", FOX, count=3, seed=1)).wait(30)
        assert run.status == "completed"
        assert client.ledger is not None
        assert float(client.ledger.runs()["est_cost"].iloc[0]) == pytest.approx(0.12)
        assert not catalog_cache_path().exists()  # nothing wrong was cached
        released.set()
        client.close()


def test_a_price_per_another_unit_is_not_used_and_is_said(tmp_path: Path) -> None:
    def per_second(body: dict[str, Any]) -> None:
        body.update(price_unit="second", base_price_usd=0.002)

    with tampered(changed_entry(per_second)) as emu:
        client = connected(emu, tmp_path)
        with pytest.warns(CatalogWarning, match="per 'second'"):
            price = client.price("seedream-4.5")
        assert price.per_image == Decimal("0.04")
        assert price.source.startswith("built-in list price") and "per 'second'" in price.source
        client.close()


def test_schema_drift_is_one_warning_per_difference_and_requests_follow_the_built_in_spec(tmp_path: Path) -> None:
    def drifted(body: dict[str, Any]) -> None:
        if body["model_id"] != M45:
            return
        props = body["input_schema"]["properties"]
        props["resolution"]["enum"].append("8K")
        props["prompt"]["maxLength"] = 100
        props["style"] = {"title": "Style", "type": "string", "enum": ["photo", "ink"]}
        del props["seed"]

    with tampered(changed_entry(drifted)) as emu:
        client = connected(emu, tmp_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client.price("seedream-4.5")
            client.price("seedream-4.5")  # the same client warns once
        drift = sorted(str(w.message) for w in caught if issubclass(w.category, SchemaDriftWarning))
        assert len(drift) == 4, drift
        assert all(m.startswith(f"{M45}: RunComfy's live field") for m in drift)
        named = " | ".join(drift)
        assert "'8K'" in named and "'style'" in named and "'seed'" in named and "maxLength is 100" in named

        # the built-in spec still decides what is sent
        with pytest.raises(seqnb.RequestInvalid, match="8K"):
            client.submit(seqnb.Request("seedream-4.5", FOX, count=3, size="8K"))
        assert emu.counters.submits == 0

        # opting into the live schema: validation follows it
        live = seqnb.Client(emu.token, emu.base_url, live_schema=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SchemaDriftWarning)
            ok = live.aio.validate(seqnb.Request("seedream-4.5", FOX, count=3, size="8K", style="ink"))
            long_prompt = live.aio.validate(seqnb.Request("seedream-4.5", FOX + " " + "x" * 120, count=3))
            plan = live.plan(prompts=[FOX], sizes=["8K"])
        assert ok.ok, str(ok)
        assert not long_prompt.ok and long_prompt.errors[0].code == "too_long"
        assert not plan.errors and plan.total == {"USD": Decimal("0.12")}
        client.close()
        live.close()


# --- the pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [M40, M45])
def test_the_published_schemas_do_not_drift_from_the_built_in_specs(model: str) -> None:
    spec = get_model(model)
    assert schema_drift(spec, page_schema(model)) == []
    redrawn = spec_from_schema(spec, page_schema(model))
    assert [(f.wire, f.role, f.kind, f.enum, f.max_length) for f in redrawn] == [
        (f.wire, f.role, f.kind, f.enum, f.max_length) for f in spec
    ]


@pytest.mark.parametrize(
    "schema",
    [None, "text", [], {"properties": []}, {"properties": {"text": 5}}, {"properties": {}, "required": "text"}],
)
def test_a_malformed_schema_is_a_warning_never_a_crash(schema: Any) -> None:
    spec = get_model(M40)
    drift = schema_drift(spec, schema)
    assert drift and all(str(d).startswith(M40) for d in drift)
    with pytest.raises(ValueError):
        spec_from_schema(spec, schema if isinstance(schema, dict) and schema.get("properties") else None)


def test_a_changed_type_and_limits_are_named() -> None:
    spec = get_model(M40)
    schema = page_schema(M40)
    schema["properties"]["seed"]["type"] = "string"
    schema["properties"]["text"]["maxLength"] = 800
    schema["properties"]["sequential_image_generation_options"]["maximum"] = 15  # agrees with the enum: no drift
    schema["required"].append("seed")
    kinds = {(d.field, d.kind) for d in schema_drift(spec, schema)}
    assert kinds == {("seed", "type"), ("text", "limit"), ("seed", "required")}


def test_entries_are_read_defensively() -> None:
    entry = CatalogEntry.from_json(
        {"model_id": M45, "base_price_usd": "NaN", "price_unit": "image"}, api_base="x", fetched_at=time.time()
    )
    assert entry.base_price_usd is None and entry.price_text() == "no price"
    with pytest.raises(ValueError, match="model_id"):
        CatalogEntry.from_json({"display_name": "x"}, api_base="x", fetched_at=0)


def test_a_priced_request_keeps_its_price_and_an_explicit_one_wins() -> None:
    price = Price(Decimal("0.05"), "USD", "RunComfy catalog, fetched today")
    request = PricedRequest.of(seqnb.Request("seedream-4.5", FOX, count=3, seed=1), price)
    assert request.cost().amount == Decimal("0.15") and request.cost().source == price.source
    assert request.replace(seed=2).cost().amount == Decimal("0.15")
    assert request.cost({"seedream-4.5": "0.10"}).amount == Decimal("0.30")
    assert request == seqnb.Request("seedream-4.5", FOX, count=3, seed=1)


def test_the_async_client_reads_the_catalog_before_it_prices_a_submit() -> None:
    with emulator(**FAST, prices={"seedream-4.5": "0.06"}) as emu:

        async def go() -> seqnb.AsyncRun:
            client = seqnb.AsyncClient(emu.token, emu.base_url)
            run = await client.submit(seqnb.Request("seedream-4.5", FOX, count=3, seed=1))
            await run.wait(30)
            await client.aclose()
            return run

        run = asyncio.run(go())
        cost = run.request.cost()
        assert cost.amount == Decimal("0.18") and cost.source.startswith("emulator catalog, fetched")
        assert emu.counters.catalog_calls == 4  # one entry per model
