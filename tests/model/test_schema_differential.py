"""seqnb's validator against the model pages' own input schemas (read in the pages' text), checked by jsonschema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqnb.model.spec import get_model
from seqnb.model.validation import validate_payload
from tests.seed_pages import PAGES, page_schema

SCHEMAS = {model: page_schema(model) for model in PAGES}
SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def schema_for(model: str) -> dict[str, Any]:
    return SCHEMAS[model]


def schema_accepts(model: str, payload: dict[str, Any]) -> bool:
    return jsonschema.Draft202012Validator(schema_for(model)).is_valid(payload)


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(min_size=590, max_size=620),
    st.lists(st.integers(), max_size=2),
    st.just("2560x1440"),
    st.just("16:9"),
)


def prompt_stating(count: int) -> st.SearchStrategy[str]:
    tail = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Nd", "Cs"]), max_size=120)
    return tail.map(lambda t: f"Generate {count} images of {t}".strip())


def valid_value(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if prop["type"] == "integer":
        return st.integers(-1, 2**31 - 1)
    return st.text(max_size=100)


@st.composite
def valid_payloads(draw: st.DrawFn, model: str) -> dict[str, Any]:
    """Payloads that follow the schema and the pages' stated rules."""
    spec = get_model(model)
    props = schema_for(model)["properties"]
    payload: dict[str, Any] = {}
    for name, prop in props.items():
        if name in schema_for(model).get("required", []) or draw(st.booleans()):
            payload[name] = draw(valid_value(prop))
    count = payload.get(spec.count_field.wire, spec.count_field.default)
    payload[spec.prompt_field.wire] = draw(prompt_stating(count))
    return payload


@st.composite
def mixed_payloads(draw: st.DrawFn, model: str) -> dict[str, Any]:
    """Any mix of valid and broken fields, known and unknown names."""
    props = schema_for(model)["properties"]
    other_names = ["prompt", "text", "image_size", "resolution", "optimize_prompt_options", "count", "size"]
    names = sorted(set(props) | set(other_names))
    payload: dict[str, Any] = {}
    for name in names:
        if draw(st.booleans()):
            payload[name] = draw(st.one_of(valid_value(props[name]), anything) if name in props else anything)
    return payload


@pytest.mark.slow  # 600 drawn payloads per model: the full run's search
@pytest.mark.parametrize("model", list(SCHEMAS))
@SETTINGS
@given(data=st.data())
def test_valid_payloads_are_accepted_by_both(model: str, data: st.DataObject) -> None:
    payload = data.draw(valid_payloads(model))
    assert schema_accepts(model, payload), payload
    report = validate_payload(model, payload)
    assert report.ok, (payload, str(report))


@pytest.mark.slow  # 600 drawn payloads per model: the full run's search
@pytest.mark.parametrize("model", list(SCHEMAS))
@SETTINGS
@given(data=st.data())
def test_seqnb_accepts_only_what_the_schema_accepts(model: str, data: st.DataObject) -> None:
    payload = data.draw(mixed_payloads(model))
    report = validate_payload(model, payload)
    if not schema_accepts(model, payload):
        assert not report.ok, f"jsonschema rejects but seqnb accepts: {payload!r}"
    if report.ok:
        assert schema_accepts(model, payload)
    # the only errors beyond the schema are the pages' worded rules and unknown fields
    if schema_accepts(model, payload):
        extra = {p.code for p in report.errors}
        assert extra <= {"unknown_field", "count_mismatch", "too_long"}, str(report)


@pytest.mark.slow  # 600 drawn payloads per model: the full run's search
@pytest.mark.parametrize("model", list(SCHEMAS))
@SETTINGS
@given(data=st.data())
def test_broken_payloads_are_rejected_by_both(model: str, data: st.DataObject) -> None:
    payload = data.draw(valid_payloads(model))
    props = schema_for(model)["properties"]
    name = data.draw(st.sampled_from(sorted(props)))
    prop = props[name]
    if prop["type"] == "integer":
        bad = data.draw(
            st.one_of(
                st.booleans(), st.text(max_size=3), st.floats(0.5, 9.5).filter(lambda f: not f.is_integer()), st.none()
            )
        )
        if "enum" in prop:
            bad = data.draw(st.one_of(st.just(bad), st.integers(16, 99), st.integers(-99, 0)))
    else:
        bad = data.draw(st.one_of(st.integers(), st.booleans(), st.none(), st.lists(st.text(), max_size=1)))
        if "enum" in prop:
            bad = data.draw(st.one_of(st.just(bad), st.text(max_size=12).filter(lambda s: s not in prop["enum"])))
    if data.draw(st.booleans()) and name in schema_for(model).get("required", []):
        del payload[name]
    else:
        payload[name] = bad
    assert not schema_accepts(model, payload), payload
    report = validate_payload(model, payload)
    assert not report.ok
    assert any(p.wire == name for p in report.errors), str(report)
