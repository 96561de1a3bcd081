"""One JSON file per model: the pages' schemas verbatim, specs drawn from them as from a live schema, a model added by a file."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import seqnb
from seqnb.api.catalog.drift import schema_drift
from seqnb.model.spec import (
    MODEL_FILES,
    MODELS,
    FieldSpec,
    ModelSpec,
    Validation,
    get_model,
    load_model,
    register,
    spec_from_schema,
)
from seqnb.testing import FAST, emulator
from tests.conftest import E40, E45, M40, M45
from tests.seed_pages import PAGES, page_schema

FOX = "Generate 3 images of a fox"


def model_file(model: str) -> dict[str, Any]:
    path = MODEL_FILES / (model.split("/", 1)[1].replace("/", "-") + ".json")
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("model", list(PAGES))
def test_a_sequential_models_shipped_schema_is_its_pages_own(model: str) -> None:
    assert model_file(model)["input_schema"] == page_schema(model)
    assert get_model(model).input_schema() == page_schema(model)


@pytest.mark.parametrize(("edit", "sibling", "most"), [(E40, M40, 10), (E45, M45, 14)])
def test_an_edit_siblings_schema_is_its_siblings_fields_plus_images(edit: str, sibling: str, most: int) -> None:
    schema = model_file(edit)["input_schema"]
    images = schema["properties"].pop("images")
    assert schema["required"].pop(0) == "images"
    assert schema == page_schema(sibling)
    assert images["type"] == "array" and images["format"] == "image_uris" and images["maxItems"] == most
    assert images["items"] == {"type": "string", "format": "uri"}
    spec = get_model(edit)
    assert spec.references_field is not None and spec.references_field.unconfirmed
    assert "UNCONFIRMED" in model_file(edit)["schema_source"] and spec.unconfirmed


@pytest.mark.parametrize("model", [M40, M45, E40, E45])
def test_a_built_in_spec_is_drawn_as_a_live_schema_is(model: str) -> None:
    spec = get_model(model)
    redrawn = spec_from_schema(spec, spec.input_schema())
    assert redrawn.fields == tuple(replace(f, unconfirmed=False) for f in spec.fields)  # the service's own
    assert (redrawn.id, redrawn.aliases, redrawn.price_per_image, redrawn.notes) == (
        spec.id,
        spec.aliases,
        spec.price_per_image,
        spec.notes,
    )
    assert spec_from_schema(model_file(model), model_file(model)["input_schema"]) == spec
    assert schema_drift(spec, spec.input_schema()) == []


def test_the_pages_worded_limit_stays_and_only_a_stricter_live_one_drifts() -> None:
    spec = get_model(M45)
    prompt = spec.prompt_field
    assert (prompt.max_length, prompt.max_length_origin) == (599, "page")
    assert "maxLength" not in spec.input_schema()["properties"]["prompt"]
    assert model_file(M45)["page_limits"]["prompt"]["maxLength"] == 599
    live = spec.input_schema()
    for limit, drifts in ((600, False), (599, False), (598, True)):
        live["properties"]["prompt"]["maxLength"] = limit
        assert bool(schema_drift(spec, live)) is drifts, limit
    assert spec_from_schema(spec, page_schema(M45)).prompt_field.max_length == 599
    assert spec_from_schema(spec, live).prompt_field.max_length == 598


def test_a_live_schema_gives_its_format_and_validations_for_later_checks() -> None:
    spec = get_model(E45)
    live = spec.input_schema()
    rule = {"validation_rule": "width_pixels>", "validation_value": 14, "validation_error": "too narrow"}
    live["properties"]["images"].update(maxItems=3, validations=[rule, {"no": "rule"}])
    images = spec_from_schema(spec, live).references_field
    assert images is not None and images.format == "image_uris" and images.max_items == 3
    assert images.validations == (Validation("width_pixels>", 14, "too narrow"),)
    (drift,) = [d for d in schema_drift(spec, live) if d.kind == "validations"]
    assert "width_pixels> 14 ('too narrow')" in drift.detail and "does not check" not in drift.detail
    assert drift.followed and str(drift).endswith("seqnb checks the live value")  # the live rule is the one checked


def test_overridden_reference_limits_are_in_the_schema_too() -> None:
    spec = get_model(E40).with_reference_limits(max_references=12, max_total=20)
    assert spec.max_references == 12 and spec.input_schema()["properties"]["images"]["maxItems"] == 12
    assert get_model(E40).input_schema()["properties"]["images"]["maxItems"] == 10
    (drift,) = schema_drift(spec, get_model(E40).input_schema())
    assert "maxItems is 10 live, 12 built in" in drift.detail


def test_a_hand_written_spec_gets_its_schema_drawn_from_its_fields() -> None:
    spec = ModelSpec(
        id="acme/storyboard/sequential",
        title="Acme",
        aliases=("acme",),
        price_per_image=Decimal("0.01"),
        fields=(
            FieldSpec(wire="caption", role="prompt", kind="string", title="Caption", required=True, max_length=50),
            FieldSpec(wire="n", role="count", kind="integer", title="N", enum=(1, 2), default=2),
        ),
    )
    schema = spec.input_schema()
    assert schema["required"] == ["caption"] and schema["properties"]["caption"]["maxLength"] == 50
    assert schema["properties"]["n"] == {
        "title": "N",
        "description": "",
        "type": "integer",
        "enum": [1, 2],
        "default": 2,
    }
    assert spec_from_schema(spec, schema) == spec and schema_drift(spec, schema) == []


def test_adding_a_model_is_adding_a_file(tmp_path: Path) -> None:
    about = model_file(M45)
    about.update(id="acme/storyboard/sequential", title="Acme storyboard", aliases=["acme"], price_per_image="0.01")
    about["input_schema"]["properties"]["resolution"]["enum"] = ["2K"]
    about["input_schema"]["properties"]["resolution"]["default"] = "2K"
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(about), encoding="utf-8")
    saved = list(MODELS)
    try:
        spec = register(path)
        assert get_model("acme") is spec and spec.sizes == ("2K",) and spec.prompt_field.max_length == 599
        assert not seqnb.Request("acme", FOX, count=3, size="4K").validate().ok
        with emulator(**FAST) as emu:
            served = httpx.get(f"{emu.base_url}/v1/models/{spec.id}", headers={"Authorization": f"Bearer {emu.token}"})
            assert served.json()["input_schema"] == about["input_schema"]
            client = seqnb.Client(emu.token, emu.base_url)
            run = client.submit(seqnb.Request("acme", FOX, count=3, seed=1)).wait(30)
            assert run.status == "completed" and run.request.cost().amount == Decimal("0.03")
            client.close()
    finally:
        MODELS[:] = saved


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.update(role={}), "unknown key 'role'"),
        (lambda d: d.pop("id"), "no 'id'"),
        (lambda d: d.update(price_per_image=0.04), "'price_per_image' must be a JSON str"),
        (lambda d: d.update(price_per_image="four cents"), "four cents"),
        (lambda d: d["roles"].update(size="size"), "'size', not in its input_schema"),
        (lambda d: d["roles"].update(style="prompt"), "unknown role 'style'"),
        (lambda d: d["roles"].pop("count"), "needs a field with role 'count'"),
        (lambda d: d["input_schema"]["properties"]["seed"].update(type="number"), "field 'seed' has type 'number'"),
    ],
)
def test_a_broken_model_file_names_itself_and_what_is_wrong(tmp_path: Path, change: Any, named: str) -> None:
    about = model_file(M45)
    change(about)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(about), encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json") as info:
        load_model(path)
    assert named in str(info.value)


def test_the_model_files_are_read_on_first_use_not_on_import() -> None:
    code = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "import seqnb, seqnb.model.spec, seqnb.cli.parser\n"
        "before = [p for p in opened if p.endswith('.json')]\n"
        "seqnb.model.spec.get_model('4.5')\n"
        "print(len(before), len([p for p in opened if p.endswith('.json')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["0", str(len(list(MODEL_FILES.glob("*.json"))))]
