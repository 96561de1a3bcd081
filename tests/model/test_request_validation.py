from __future__ import annotations

from decimal import Decimal

import pytest

import seqnb
from seqnb import Request
from seqnb.errors import UnknownModelError
from seqnb.model.spec import FieldSpec, ModelSpec, get_model, register
from seqnb.model.validation import Report, validate_payload


def codes(report: Report) -> dict[str, str]:
    return {p.field: p.code for p in report.problems}


def test_models_aliases_and_ids() -> None:
    ids = [m.id for m in seqnb.models()]
    assert ids == [
        "bytedance/seedream-4-0/sequential",
        "bytedance/seedream-4-5/sequential",
        "bytedance/seedream-4-0/edit-sequential",
        "bytedance/seedream-4-5/edit-sequential",
    ]
    assert get_model("seedream-4.0").id == ids[0]
    assert get_model("SEEDREAM-4.5").id == ids[1]
    assert get_model("bytedance/seedream-4-5/sequential").id == ids[1]
    with pytest.raises(UnknownModelError, match=r"unknown model 'seedream-5'.*seedream-4\.0"):
        get_model("seedream-5")


def test_vocabulary_maps_to_each_models_wire_names() -> None:
    r40 = Request("seedream-4.0", "Generate 2 images of a fox", count=2, size="16:9", seed=7, optimize="standard")
    assert r40.payload() == {
        "text": "Generate 2 images of a fox",
        "sequential_image_generation_options": 2,
        "image_size": "2560:1440 (16:9)",
        "seed": 7,
        "optimize_prompt_options": "standard",
    }
    r45 = Request("seedream-4.5", "Generate 2 images of a fox", count=2, size="2K", seed=7)
    assert r45.payload() == {
        "prompt": "Generate 2 images of a fox",
        "sequential_image_generation_options": 2,
        "resolution": "2K",
        "seed": 7,
    }
    assert r40.validate().ok and r45.validate().ok


def test_count_is_always_sent_and_defaults_resolve() -> None:
    r = Request("seedream-4.5", "Generate 3 images of a fox")
    assert r.payload()["sequential_image_generation_options"] == 3
    resolved = r.resolved()
    assert resolved["seed"] == 41722289
    assert resolved["size"] == "2048x2048 (1:1)"
    assert Request("seedream-4.0", "x").resolved()["seed"] is None


def test_raw_payload_accepted_too() -> None:
    payload = {"text": "Generate 3 images of a beautiful sunset over a calm ocean."}
    r = Request.from_payload("seedream-4.0", payload)
    assert r.payload() == {**payload, "sequential_image_generation_options": 3}
    assert validate_payload("seedream-4.0", payload).ok


def test_every_problem_reported_at_once() -> None:
    report = validate_payload(
        "seedream-4.0",
        {"prompt": "x" * 700, "image_size": "2560x1440", "seed": True, "sequential_image_generation_options": 0},
    )
    assert {(p.field, p.wire, p.code) for p in report.errors} == {
        ("prompt", "text", "required"),  # one problem: "seedream-4.0's prompt field is 'text', not 'prompt'"
        ("size", "image_size", "enum"),
        ("seed", "seed", "type"),
        ("count", "sequential_image_generation_options", "enum"),
    }
    assert not report.ok and len(report.errors) == 4


def test_unknown_field_suggests_the_other_models_name() -> None:
    (p,) = validate_payload("seedream-4.0", {"prompt": "Generate 1 image of a"}).errors
    assert p.code == "required" and "prompt field is 'text', not 'prompt'" in p.message
    (p,) = [
        p
        for p in validate_payload(
            "seedream-4.5",
            {"prompt": "Generate 1 image of a", "image_size": "2K", "sequential_image_generation_options": 1},
        ).errors
    ]
    assert "calls it 'resolution'" in p.message
    (p,) = [
        p
        for p in validate_payload("seedream-4.5", {"promt": "a", "sequential_image_generation_options": 1}).errors
        if p.code == "unknown_field"
    ]
    assert "did you mean 'prompt'" in p.message


def test_option_missing_on_a_model_is_an_error_with_a_removal_fix() -> None:
    r = Request("seedream-4.5", "Generate 3 images of a fox", optimize="standard")
    report = r.validate()
    (p,) = report.errors
    assert p.field == "optimize" and "only seedream-4.0" in p.message
    assert r.apply(p.fixes[0]).validate().ok


def test_wrong_types() -> None:
    report = validate_payload("seedream-4.5", {"prompt": 3, "sequential_image_generation_options": "3", "seed": 1.5})
    # JSON Schema's integer admits 3.0; a Request sends it as 3
    assert validate_payload(
        "seedream-4.5", {"prompt": "Generate 3 images", "sequential_image_generation_options": 3.0}
    ).ok
    assert Request("seedream-4.5", "Generate 3 images", count=3.0).payload()["sequential_image_generation_options"] == 3
    assert codes(report) == {"prompt": "type", "count": "type", "seed": "type"}
    assert "bool" in str(validate_payload("seedream-4.5", {"prompt": "a", "sequential_image_generation_options": True}))


def test_enum_lists_allowed_values_and_suggests() -> None:
    (p,) = Request("seedream-4.5", "Generate 3 images", size="5K").validate().errors
    assert "'2K'" in p.message and "'4096x4096 (1:1)'" in p.message
    (p,) = validate_payload("seedream-4.0", {"text": "Generate 3 images of a", "image_size": "2560x1440"}).errors
    assert "Did you mean '2560:1440 (16:9)'" in p.message
    assert p.fixes[0].changes == {"size": "2560:1440 (16:9)"}
    (p,) = validate_payload("seedream-4.0", {"text": "Generate 3 images", "optimize_prompt_options": "quality"}).errors
    assert "'fast', 'standard'" in p.message


def test_loose_size_spellings_resolve_when_unique() -> None:
    assert Request("seedream-4.0", "a", size="9:16").size == "1440:2560 (9:16)"
    assert Request("seedream-4.5", "a", size="2560x1440").size == "2560x1440 (16:9)"
    assert Request("seedream-4.5", "a", size="4096x4096").size == "4096x4096 (1:1)"
    # 1:1 is ambiguous on 4.5 (2048 or 4096): kept as given, and validation says so
    assert Request("seedream-4.5", "a", size="1:1").size == "1:1"


def test_required_fields() -> None:
    report = validate_payload("seedream-4.5", {})
    assert {(p.field, p.code) for p in report.errors} == {("prompt", "required"), ("count", "required")}
    assert validate_payload("seedream-4.0", {"text": "Generate 3 images of a"}).ok


@pytest.mark.parametrize("model", ["seedream-4.0", "seedream-4.5"])
def test_count_outside_1_to_15(model: str) -> None:
    for bad in (0, 16, -3):
        (p,) = Request(model, f"Generate {bad} images of a fox", count=bad).validate().errors
        assert p.field == "count" and "from 1 to 15" in p.message


def test_prompt_limits_say_by_how_much() -> None:
    base = "Generate 3 images of "
    (p,) = Request("seedream-4.0", base + "a" * (601 - len(base))).validate().errors
    assert p.code == "too_long" and "by 1 character" in p.message and "at most 600" in p.message
    assert Request("seedream-4.0", base + "a" * (600 - len(base))).validate().ok
    (p,) = Request("seedream-4.5", base + "a" * (610 - len(base))).validate().errors
    assert "under 600" in p.message and "by 11 characters" in p.message
    assert Request("seedream-4.5", base + "a" * (599 - len(base))).validate().ok
    # characters, not bytes
    assert Request("seedream-4.0", "사진 3장 " + "가" * 590).validate().ok


def test_count_mismatch_is_an_error_with_two_fixes() -> None:
    r = Request("seedream-4.5", "Generate 4 images of a fox", count=3)
    (p,) = r.validate().errors
    assert p.field == "count" and p.code == "count_mismatch" and "you pay for 3" in p.message
    set_count, rewrite = p.fixes
    assert r.apply(set_count).count == 4 and r.apply(set_count).validate().ok
    assert r.apply(rewrite).prompt == "Generate 3 images of a fox" and r.apply(rewrite).validate().ok


def test_count_mismatch_in_korean_chinese_japanese() -> None:
    for prompt, fixed in [
        ("고양이 세 장", "고양이 두 장"),
        ("三张猫的图片", "两张猫的图片"),
        ("猫の画像を3枚", "猫の画像を2枚"),
    ]:
        r = Request("seedream-4.5", prompt, count=2)
        (p,) = r.validate().errors
        assert p.code == "count_mismatch"
        assert r.apply(p.fixes[1]).prompt == fixed


def test_missing_count_is_a_warning_with_a_prefix_fix() -> None:
    r = Request("seedream-4.0", "a fox in the snow", count=2)
    report = r.validate()
    assert report.ok
    (w,) = report.warnings
    assert w.code == "count_missing" and w.severity == "warning"
    fixed = r.apply(w.fixes[0])
    assert fixed.prompt == "Generate 2 images of a fox in the snow"
    assert fixed.validate().problems == ()


def test_default_count_is_checked_against_the_prompt() -> None:
    (p,) = Request("seedream-4.0", "Generate 5 images of a fox").validate().errors
    assert "is 3 but the prompt asks for 5" in p.message


def test_several_counts_warn_only_when_one_agrees() -> None:
    report = Request("seedream-4.5", "Generate 4 images of a fox, then 2 pictures of its den", count=4).validate()
    assert report.ok and [w.code for w in report.warnings] == ["count_ambiguous"]
    per = Request("seedream-4.5", "Generate 4 images: one image per season", count=4).validate()
    assert per.ok and not per.warnings  # a number said per image is no second count (#30)


def test_cost_estimates_use_decimal_and_the_requested_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQNB_PRICES", raising=False)
    cost = Request("seedream-4.5", "Generate 3 images of a", count=3).cost()
    assert cost.amount == Decimal("0.12") and cost.currency == "USD" and str(cost) == "USD 0.12"
    assert Request("seedream-4.0", "Generate 15 images", count=15).cost().amount == Decimal("0.45")
    custom = Request("seedream-4.0", "Generate 3 images", count=3).cost(prices={"seedream-4.0": "0.035"})
    assert custom.amount == Decimal("0.105") and str(custom) == "USD 0.105" and custom.source == "argument"
    monkeypatch.setenv("SEQNB_PRICES", "seedream-4.5=0.05 EUR, bytedance/seedream-4-0/sequential=0.02")
    assert str(Request("seedream-4.5", "Generate 2 images", count=2).cost()) == "EUR 0.10"
    assert Request("seedream-4.0", "Generate 2 images", count=2).cost().amount == Decimal("0.04")
    monkeypatch.setenv("SEQNB_PRICES", "seedream-4.5:0.05")
    with pytest.raises(ValueError, match="model=price"):
        Request("seedream-4.5", "a").cost()


def test_check_raises_with_every_error_and_nothing_sent() -> None:
    with pytest.raises(seqnb.RequestInvalid) as info:
        Request("seedream-4.5", "Generate 4 images", count=20, size="8K").check()
    text = str(info.value)
    assert "count" in text and "size" in text
    assert len(info.value.report.errors) == 2


def test_adding_a_model_is_a_data_change() -> None:
    spec = ModelSpec(
        id="acme/storyboard/sequential",
        title="Acme",
        aliases=("acme",),
        price_per_image=Decimal("0.01"),
        fields=(
            FieldSpec(wire="caption", role="prompt", kind="string", title="Caption", required=True, max_length=50),
            FieldSpec(wire="n", role="count", kind="integer", title="N", enum=tuple(range(1, 5)), default=2),
        ),
    )
    register(spec)
    try:
        r = Request("acme", "Generate 2 images of a fox")
        assert r.payload() == {"caption": "Generate 2 images of a fox", "n": 2}
        assert r.validate().ok and str(r.cost()) == "USD 0.02"
        assert not Request("acme", "x" * 51).validate().ok
    finally:
        seqnb.model.spec.MODELS.remove(spec)


def test_replace_and_for_model() -> None:
    r = Request("seedream-4.0", "Generate 3 images of a fox", size="16:9", seed=1, optimize="standard")
    assert r.replace(seed=2).seed == 2 and r.seed == 1
    assert r.replace(seed=None).get("seed") is None
    moved = r.for_model("seedream-4.5")
    assert moved.payload() == {
        "prompt": "Generate 3 images of a fox",
        "resolution": "2560x1440 (16:9)",
        "seed": 1,
        "sequential_image_generation_options": 3,
    }
    assert r == Request.from_payload("seedream-4.0", r.payload())
