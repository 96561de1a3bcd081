"""The edit-sequential siblings as data, and the pure checks of their references (no I/O)."""

from __future__ import annotations

import pytest

import seqnb
from seqnb.api.catalog.drift import schema_drift
from seqnb.model.spec import MODELS, Validation, get_model, register, spec_from_schema
from seqnb.model.sweep import plan_sweep
from seqnb.model.validation import SERVER_ENFORCED, Problem, server_problems, validate_payload
from tests.conftest import E40, E45

REF = "https://img.example/cat.png"
FOX = "Generate 3 images of a fox"


def errors_of(request: seqnb.Request) -> list[Problem]:
    return request.validate().errors


def test_the_siblings_carry_their_own_wire_names_and_unconfirmed_limits() -> None:
    e40, e45 = get_model("seedream-4.0-edit"), get_model("4.5-edit")
    assert (e40.id, e45.id) == (E40, E45)
    assert (e40.prompt_field.wire, e45.prompt_field.wire) == ("text", "prompt")
    assert e40.references_field is not None and e40.references_field.wire == "images"
    assert (e40.max_references, e45.max_references, e40.max_total_images) == (10, 14, 15)
    assert e40.references_field.unconfirmed and e40.unconfirmed  # borrowed from other hosts, and says so
    assert e40.sizes == get_model("4.0").sizes and e45.default("seed") == get_model("4.5").default("seed")
    assert e40.price_per_image == get_model("4.0").price_per_image
    r40 = seqnb.Request("4.0-edit", FOX, count=3, references=[REF])
    r45 = seqnb.Request("4.5-edit", FOX, count=3, references=(REF,))
    assert r40.payload() == {"images": [REF], "text": FOX, "sequential_image_generation_options": 3}
    assert r45.payload() == {"images": [REF], "prompt": FOX, "sequential_image_generation_options": 3}
    assert r45.references == (REF,) and r40.validate().ok and r45.validate().ok


def test_references_on_a_model_that_takes_none_name_the_field_and_the_sibling() -> None:
    (problem,) = errors_of(seqnb.Request("seedream-4.5", FOX, count=3, references=[REF]))
    assert problem.field == "references" and "seedream-4.5-edit" in problem.message and E45 in problem.message
    (missing,) = errors_of(seqnb.Request("4.0-edit", FOX, count=3))
    assert missing.field == "references" and missing.code == "required" and "references=[url" in missing.message


def test_too_many_references_and_too_many_with_the_count() -> None:
    (over,) = errors_of(seqnb.Request("4.0-edit", FOX, count=3, references=[REF] * 11))
    assert over.code == "too_many" and "at most 10" in over.message
    assert seqnb.Request("4.5-edit", "Generate 1 image of a fox", count=1, references=[REF] * 14).validate().ok
    (total,) = errors_of(seqnb.Request("4.5-edit", "Generate 3 images of a fox", count=3, references=[REF] * 13))
    assert total.code == "too_many" and "13 references plus 3 images is 16" in total.message
    assert total.fixes[0].changes == {"count": 2}
    assert [
        p.code
        for p in server_problems(E45, {"images": [REF] * 13, "prompt": FOX, "sequential_image_generation_options": 3})
    ] == ["too_many"]


@pytest.mark.parametrize(
    "url",
    ["http://img.example/cat.png", "ftp://img.example/cat.png", "./cat.png"],
)
def test_a_reference_that_is_not_https_is_refused_naming_it(url: str) -> None:
    (problem,) = errors_of(seqnb.Request("4.5-edit", FOX, count=3, references=[url]))
    assert problem.code == "not_https" and url in problem.message and "https" in problem.message
    assert "inline" in problem.message  # and how to send a local image instead


def test_an_image_data_uri_is_a_reference_and_any_other_data_uri_is_refused() -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    assert seqnb.Request("4.5-edit", FOX, count=3, references=[image]).validate().ok
    for other in ("data:text/html;base64,PGI+", "data:image/png,rawbytes", "data:,hello"):
        (problem,) = errors_of(seqnb.Request("4.5-edit", FOX, count=3, references=[other]))
        assert problem.code == "type" and "not a base64 image" in problem.message, other
        assert problem.code in SERVER_ENFORCED  # the emulator refuses it too
    bare = server_problems(
        E45, {"images": ["data:text/plain;base64,aGk="], "prompt": FOX, "sequential_image_generation_options": 3}
    )
    assert [p.code for p in bare] == ["type"]


def test_a_stand_in_is_a_reference_held_to_the_pixel_cap_and_the_rules_without_io() -> None:
    """What a record keeps for an inline image (its hash and size) is checked like the image it stands for."""
    sha = "ab" * 32
    ok = f"data:image/png;sha256={sha},640x480"
    assert seqnb.Request("4.5-edit", FOX, count=3, references=[ok]).validate().ok
    (big,) = errors_of(seqnb.Request("4.5-edit", FOX, count=3, references=[f"data:image/png;sha256={sha},8000x6000"]))
    assert big.code == "too_large" and "48.0 megapixels" in big.message and "at most 6531x4898" in big.message
    rule = Validation("width_pixels>", 700, "Reference images must be wider than 700 pixels.")
    ruled = get_model(E45).with_reference_limits(validations=(rule,))
    (narrow,) = [p for p in validate_payload(ruled, {"images": [ok], "prompt": FOX}).errors if p.code == "rule"]
    assert "Reference images must be wider than 700 pixels." in narrow.message and "640x480" in narrow.message


def test_loopback_and_allowed_hosts_may_be_plain_http() -> None:
    local = seqnb.Request("4.5-edit", FOX, count=3, references=["http://127.0.0.1:8000/files/a.png"])
    assert local.validate().ok
    lan = seqnb.Request("4.5-edit", FOX, count=3, references=["http://files.lan:8080/a.png"])
    assert not lan.validate().ok and lan.validate(http_hosts=["files.lan:8080"]).ok


def test_a_sweep_takes_a_references_axis() -> None:
    a, b = "https://img.example/a.png", "https://img.example/b.png"
    plan = plan_sweep(prompts=[FOX], models=["4.5-edit"], references=[[a], [a, b]])
    assert [r.references for r in plan.requests] == [(a,), (a, b)] and not plan.errors
    one = plan_sweep(prompts=[FOX], models=["4.5-edit"], references=[a, b])  # a flat list is one set
    assert [r.references for r in one.requests] == [(a, b)]
    mixed = plan_sweep(prompts=[FOX], models=["4.5", "4.5-edit"], references=[[a]])
    assert [p.field for _, p in mixed.errors] == ["references"]  # the plain sequential model takes none


def test_the_unconfirmed_limits_can_be_overridden_as_data() -> None:
    spec = get_model("4.0-edit")
    saved = list(MODELS)
    try:
        register(spec.with_reference_limits(max_references=12, max_total=20))
        assert seqnb.Request("4.0-edit", FOX, count=3, references=[REF] * 12).validate().ok
    finally:
        MODELS[:] = saved
    assert not seqnb.Request("4.0-edit", FOX, count=3, references=[REF] * 12).validate().ok


def test_the_live_schema_is_checked_against_the_built_in_limits() -> None:
    spec = get_model(E40)
    assert schema_drift(spec, spec.input_schema()) == []
    live = spec.input_schema()
    live["properties"]["images"]["maxItems"] = 6
    (drift,) = schema_drift(spec, live)
    assert (
        drift.field == "images" and "maxItems is 6 live, 10 built in" in drift.detail and "UNCONFIRMED" in drift.detail
    )
    redrawn = spec_from_schema(spec, live)
    assert redrawn.max_references == 6 and redrawn.max_total_images == 15
