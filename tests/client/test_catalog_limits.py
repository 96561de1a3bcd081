"""Reference limits from the catalog: with the live schema at hand, its ``maxItems`` and ``validations`` are the ones
checked, before anything is spent and in the service's own words; the built-in ones only when it cannot be read."""

from __future__ import annotations

import asyncio
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import seqnb
from seqnb import ImageCache, RequestInvalid
from seqnb.api.transport import RetryPolicy
from seqnb.client.core import AsyncClient
from seqnb.model.spec import get_model
from tests.conftest import E45
from tests.file_host import FileHost, Served
from tests.hostile import HostileServer, Script, accepted

FOX = "Generate 2 images of a fox"
REFS = ["https://img.example/a.png", "https://img.example/b.png", "https://img.example/c.png"]
NARROW = "Reference images must be at least 100 pixels wide (RunComfy)."


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    s = HostileServer().start()
    yield s
    s.stop()


def live_entry(**images: Any) -> dict[str, Any]:
    """RunComfy's catalog entry for the 4.5 edit model, its ``images`` field changed by ``images``."""
    schema = get_model(E45).input_schema()
    schema["properties"]["images"].update(images)
    return {
        "model_id": E45,
        "display_name": "Seedream 4.5 edit-sequential",
        "base_price_usd": 0.04,
        "price_unit": "image",
        "input_schema": schema,
    }


def client_for(server: HostileServer, tmp_path: Path, **kw: Any) -> AsyncClient:
    cache = ImageCache(tmp_path / "images", allow_hosts=kw.pop("allow", []), retries=1)
    client = AsyncClient("tok", server.base_url, retry=RetryPolicy(attempts=2, base=0.01, cap=0.02), **kw)
    client.references._cache = cache  # the client's own cache for references (no gallery here)
    return client


def submit(client: AsyncClient, refs: list[Any]) -> seqnb.AsyncRun:
    async def go() -> seqnb.AsyncRun:
        try:
            run = await client.submit("seedream-4.5-edit", FOX, count=2, references=refs)
            await run.accepted(timeout=10)
            return run
        finally:
            await client.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", seqnb.errors.SeqnbWarning)  # the live schema differs from the built-in one
        return asyncio.run(go())


def test_a_catalog_schema_with_max_items_2_refuses_a_third_reference_before_any_submit(
    server: HostileServer, tmp_path: Path
) -> None:
    server.play(Script(submit=[accepted()], entries={E45: live_entry(maxItems=2)}))
    with pytest.raises(RequestInvalid, match="has 3 images; at most 2 are accepted: remove 1"):
        submit(client_for(server, tmp_path), REFS)
    assert server.calls["submit"] == 0 and server.calls["catalog"] >= 1


def test_the_built_in_limit_applies_when_the_catalog_cannot_be_read(server: HostileServer, tmp_path: Path) -> None:
    server.play(Script(submit=[accepted()]))  # the catalog answers 404
    client = client_for(server, tmp_path)
    spec = client.spec_in_use("seedream-4.5-edit")
    assert spec is get_model(E45) and spec.max_references == 14
    assert client.catalog.limits_source(E45).startswith("built in (UNCONFIRMED)")
    asyncio.run(client.aclose())


def test_a_catalog_rule_refuses_an_inline_image_in_the_services_own_words(
    server: HostileServer, tmp_path: Path
) -> None:
    rule = {"validation_rule": "width_pixels>", "validation_value": 99, "validation_error": NARROW}
    server.play(Script(submit=[accepted()], entries={E45: live_entry(validations=[rule])}))
    client = client_for(server, tmp_path)
    assert client.spec_in_use(E45).references_field.validations[0].error == NARROW  # type: ignore[union-attr]
    assert client.catalog.limits_source(E45).startswith("RunComfy catalog, fetched")
    with pytest.raises(RequestInvalid) as info:
        submit(client, [Image.new("RGB", (64, 200))])
    assert NARROW in str(info.value) and "(64x200)" in str(info.value)
    assert server.calls["submit"] == 0


def test_a_catalog_rule_refuses_a_reference_url_once_it_is_fetched_and_nothing_is_sent(
    server: HostileServer, host: FileHost, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 10)).save(buf, format="PNG")
    host.routes["/wide.png"] = Served(buf.getvalue())
    rule = {"validation_rule": "width/height<", "validation_value": 16, "validation_error": "Too wide (RunComfy)."}
    server.play(Script(submit=[accepted()], entries={E45: live_entry(validations=[rule])}))
    with pytest.raises(RequestInvalid, match=r"wide\.png \(300x10\): Too wide \(RunComfy\)\."):
        submit(client_for(server, tmp_path, allow=[host.netloc]), [host.url + "/wide.png"])
    assert server.calls["submit"] == 0 and host.hits == ["/wide.png"]
