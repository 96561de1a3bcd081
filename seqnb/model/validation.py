"""Check a wire payload against a model spec and report every problem at once.

Each problem is tied to a field, is an error or a warning, says how to fix it, and may carry
one-call fixes. Only the rules of the model pages are enforced: their input schemas, plus what
the pages state in words (the prompt states the image count; the 4.5 prompt is under 600
characters). Unknown fields are also errors: the service would ignore them silently; their message says what
the field may have meant (another model's name for a role, a near miss, a field only another model has).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._netaddr import is_loopback
from .prompt_count import find_counts, prefix_count, rewrite_count
from .references import MAX_INLINE_PIXELS, StandIn, is_image_data_uri, largest_fitting, reference_name
from .seeds import INT64_RANGE, SEED_RANGE
from .spec import COUNT_RANGE, FieldSpec, ModelSpec, get_model, models

__all__ = [
    "SERVER_ENFORCED",
    "Fix",
    "Problem",
    "Report",
    "dimension_problems",
    "reference_problems",
    "server_problems",
    "unencodable",
    "validate_payload",
]

Severity = Literal["error", "warning"]
Code = Literal[
    "unknown_field",
    "type",
    "enum",
    "required",
    "too_long",
    "count_mismatch",
    "count_missing",
    "count_ambiguous",
    "seed_range",
    "unencodable",
    "too_many",
    "not_https",
    "too_large",
    "rule",
]

SERVER_ENFORCED: frozenset[str] = frozenset({"type", "enum", "required", "too_long", "too_many", "too_large", "rule"})
"""Codes the service itself rejects a request for; the rest are seqnb's guards."""


@dataclass(frozen=True)
class Fix:
    """A one-call repair: the changes to apply, in the user vocabulary (``count``, ``prompt``...)."""

    label: str
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, tied to a field."""

    field: str
    """The user-facing name: the role (``prompt``, ``count``...) when the field has one, else the wire name."""
    message: str
    severity: Severity = "error"
    code: Code = "type"
    wire: str = ""
    fixes: tuple[Fix, ...] = ()

    @classmethod
    def of(cls, f: FieldSpec, message: str, code: Code, **kw: Any) -> Problem:
        """A problem of the field ``f``, named as users know it and by its wire name."""
        return cls(f.name, message, code=code, wire=f.wire, **kw)

    def __str__(self) -> str:
        where = self.field if not self.wire or self.wire == self.field else f"{self.field} ({self.wire})"
        return f"{self.severity}: {where}: {self.message}"


@dataclass(frozen=True)
class Report:
    """The outcome of validating one request: every problem, errors and warnings."""

    model: str
    problems: tuple[Problem, ...] = ()
    checked: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing blocks sending the request (warnings may remain)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems) or f"{self.model}: ok"

    def _repr_markdown_(self) -> str:
        return (
            "\n".join(f"- **{p.severity}** `{p.field}`: {p.message}" for p in self.problems) or f"**{self.model}**: ok"
        )


def _describe_enum(spec: FieldSpec) -> str:
    values = list(spec.enum or ())
    if values and all(isinstance(v, int) for v in values) and values == list(range(values[0], values[-1] + 1)):
        return f"a whole number from {values[0]} to {values[-1]}"
    return "one of " + ", ".join(repr(v) for v in values)


def _closest(value: str, choices: tuple[Any, ...]) -> str | None:
    strings = [c for c in choices if isinstance(c, str)]
    lowered = {c.lower(): c for c in strings}
    if value.lower() in lowered:
        return lowered[value.lower()]
    # "2560x1440" for "2560:1440 (16:9)", "16:9" for either spelling
    key = value.replace("x", ":").replace("×", ":").replace(" ", "").lower()
    for c in strings:
        dims, _, ratio = c.partition(" ")
        if key and (key == dims.replace("x", ":").lower() or f"({key})" == ratio):
            return c
    match = difflib.get_close_matches(value, strings, n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown_hint(spec: ModelSpec, key: str) -> str:
    """What an unknown field ``key`` may have meant, as ``"; ..."`` to end a message, or empty."""
    mine = _role_elsewhere(spec, key)
    if mine is not None:
        return f"; {spec.short_name} calls it {mine.wire!r}"
    close = difflib.get_close_matches(key, [f.wire for f in spec], n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    owners = [m.short_name for m in models() if m.field(key)]
    return f"; only {', '.join(owners)} accept(s) it" if owners else ""


def _misnamed_fields(spec: ModelSpec, payload: Mapping[str, Any]) -> dict[str, str]:
    """This model's required wire name -> the key given instead, when the payload uses another model's name for
    its role (``prompt`` for seedream-4.0's ``text``): one problem that names both, which the service answers too."""
    out: dict[str, str] = {}
    for key in payload:
        if not isinstance(key, str) or spec.field(key) is not None:
            continue
        mine = _role_elsewhere(spec, key)
        if mine is not None and mine.required and mine.wire not in payload:
            out.setdefault(mine.wire, key)
    return out


def _role_elsewhere(spec: ModelSpec, key: str) -> FieldSpec | None:
    """This model's field for the role another model's field ``key`` plays (4.0's ``text`` for ``prompt``), or None."""
    for other in models():
        f = other.field(key)
        if other is not spec and f is not None and f.role and (mine := spec.role(f.role)):
            return mine
    return None


def _unknown_field(spec: ModelSpec, key: str) -> Problem:
    return Problem(
        field=key,
        wire=key,
        code="unknown_field",
        message=f"{spec.short_name} has no field {key!r}{_unknown_hint(spec, key)}. Remove it or rename it; "
        f"accepted fields: {', '.join(f.wire for f in spec)}",
    )


def _check_field(f: FieldSpec, value: Any) -> list[Problem]:
    if f.kind == "array":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            shown = f"{value!r} ({type(value).__name__})"[:200]
            said = "a client's submit also takes local files, PIL images and bytes, and sends them inline"
            return [Problem.of(f, f"must be a list of image URLs, got {shown} ({said})", "type")]
        if f.required and not value:
            return [Problem.of(f, "is empty: give at least one image URL", "required")]
        if f.max_items is not None and len(value) > f.max_items:
            said = f"has {len(value)} images; at most {f.max_items} are accepted: remove {len(value) - f.max_items}"
            return [Problem.of(f, said, "too_many")]
        return []
    if f.kind == "integer":
        # JSON Schema counts 3.0 as an integer; a bool never is one
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return [Problem.of(f, f"must be a whole number, got {value!r} ({type(value).__name__})", "type")]
    elif not isinstance(value, str):
        return [Problem.of(f, f"must be text, got {value!r} ({type(value).__name__})", "type")]
    problems: list[Problem] = []
    if f.enum is not None and value not in f.enum:
        closest = _closest(value, f.enum) if isinstance(value, str) else None
        hint = f" Did you mean {closest!r}?" if closest else ""
        fixes = (Fix(f"use {closest!r}", {f.name: closest}),) if closest else ()
        problems.append(Problem.of(f, f"{value!r} is not allowed: use {_describe_enum(f)}.{hint}", "enum", fixes=fixes))
    if f.max_length is not None and isinstance(value, str) and len(value) > f.max_length:
        over = len(value) - f.max_length
        limit = f"under {f.max_length + 1}" if f.max_length_origin == "page" else f"at most {f.max_length}"
        said = f"is {len(value)} characters; it must be {limit}: shorten it by {over} character{'s' * (over != 1)}"
        problems.append(Problem.of(f, said, "too_long"))
    return problems


def _check_prompt_count(spec: ModelSpec, prompt: str, count: Any) -> list[Problem]:
    if isinstance(count, bool) or not isinstance(count, int) or count not in COUNT_RANGE:
        return []
    pf = spec.prompt_field
    mentions = find_counts(prompt)
    if not mentions:
        prefix = Fix(f"prefix 'Generate {count} image{'s' * (count != 1)} of'", {"prompt": prefix_count(prompt, count)})
        missing = (
            f"does not say how many images to make; the page asks the prompt to state it "
            f"(count is {count}). Add e.g. 'Generate {count} image{'s' * (count != 1)} of ...'"
        )
        return [Problem.of(pf, missing, "count_missing", severity="warning", fixes=(prefix,))]
    values = sorted({m.value for m in mentions})
    if count in values:
        if len(values) == 1:
            return []
        rewrite = Fix(f"rewrite every count as {count}", {"prompt": rewrite_count(prompt, count, mentions)})
        several = f"states several image counts ({', '.join(map(str, values))}); the model may follow any of them"
        return [
            Problem.of(pf, f"{several}. Keep only {count}", "count_ambiguous", severity="warning", fixes=(rewrite,))
        ]
    said = mentions[0]
    fixes = []
    if said.value in COUNT_RANGE:
        fixes.append(Fix(f"set count to {said.value}", {"count": said.value}))
    fixes.append(Fix(f"rewrite the prompt to say {count}", {"prompt": rewrite_count(prompt, count, mentions)}))
    fix = (
        f"Set count to {said.value} or change the prompt"
        if said.value in COUNT_RANGE
        else f"A sequential request makes {COUNT_RANGE.start} to {COUNT_RANGE.stop - 1} images: ask for at most "
        f"{COUNT_RANGE.stop - 1} in the prompt"
    )
    message = (
        f"is {count} but the prompt asks for {said.value} ({said.text!r}); they must agree, and you pay for {count}"
    )
    return [Problem.of(spec.count_field, f"{message}. {fix}", "count_mismatch", fixes=tuple(fixes))]


def _schema_problems(spec: ModelSpec, payload: Mapping[str, Any]) -> list[Problem]:
    """What the page's input schema says about the payload, plus unknown fields; linear in its size."""
    problems: list[Problem] = []
    misnamed = _misnamed_fields(spec, payload)
    for key in payload:
        if spec.field(key) is None and key not in misnamed.values():
            problems.append(_unknown_field(spec, str(key)))
    for f in spec:
        if f.wire not in payload:
            given = misnamed.get(f.wire)
            if given is not None:
                message = f"{spec.short_name}'s {f.name} field is {f.wire!r}, not {given!r}: rename it"
                problems.append(Problem.of(f, message, "required"))
            elif f.required:
                how = {
                    "count": "a whole number from 1 to 15",
                    "prompt": "the prompt text, stating the number of images",
                    "references": "references=[url, ...], the reference images",
                }.get(f.role or "", f"a {f.kind}")
                problems.append(Problem.of(f, f"is required: give {how}", "required"))
            continue
        problems.extend(_check_field(f, payload[f.wire]))
    return problems


def _url_host(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) of a URL, lower-cased, without parsing anything but its start."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", ""
    netloc = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1].lower()
    return scheme.lower(), netloc


_MEASURES = {"width_pixels": 0, "height_pixels": 1, "width/height": 2}


def dimension_problems(spec: FieldSpec, name: str, width: int, height: int) -> list[Problem]:
    """What the service's own rules for a reference field (``FieldSpec.validations``: ``width_pixels>``,
    ``width/height<``...) say of one image of ``width`` x ``height`` (``name``: how to name it), each with the
    service's own error text.

    As RunComfy's own tools read them: ``>`` wants more than the value, ``<`` less; a rule on anything but
    width, height or their ratio, or with a value that is no number, is left to the service.
    """
    measured = (width, height, width / height if height else math.inf)
    problems: list[Problem] = []
    for rule in spec.validations:
        index = _MEASURES.get(rule.rule[:-1])
        value = rule.value
        if index is None or rule.rule[-1] not in "<>" or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        actual = measured[index]
        if (actual <= value) if rule.rule.endswith(">") else (actual >= value):
            said = rule.error or f"must have {rule.rule} {value}"
            message = f"{name} ({width}x{height}): {said} (the service's rule: {rule.rule} {value})"
            problems.append(Problem.of(spec, message, "rule"))
    return problems


def _inline_problems(f: FieldSpec, reference: str) -> list[Problem]:
    """What is wrong with an inline reference without I/O: another kind of data URI, too many pixels, the rules."""
    stand_in = StandIn.parse(reference)
    if stand_in is None:
        if is_image_data_uri(reference):
            return []  # a data URI the client turns into its stand-in, measured then
        said = (
            f"{reference[:60]!r} is a data: URI but not a base64 image: give an image (a data:image/png;base64,... "
            "URI, a local file, a PIL image or bytes), or an https URL"
        )
        return [Problem.of(f, said, "type")]
    w, h = stand_in.width, stand_in.height
    if w * h > MAX_INLINE_PIXELS:
        fit = "x".join(map(str, largest_fitting(w, h, MAX_INLINE_PIXELS)))
        message = (
            f"{reference_name(reference)} is {w}x{h}, {w * h / 1e6:.1f} megapixels; an inline reference may have at most "
            f"{MAX_INLINE_PIXELS / 1e6:g}: resize it to at most {fit}"
        )
        return [Problem.of(f, message, "too_large")]
    return dimension_problems(f, reference_name(reference), w, h)


def reference_problems(
    spec: ModelSpec, references: Any, count: Any, *, http_hosts: Iterable[str] = ()
) -> list[Problem]:
    """What is wrong with a payload's references, without I/O: too many, too many with the count, not https, an
    inline one the service would refuse (another kind of data URI, too many pixels, the field's ``validations``).

    ``http_hosts`` (``host:port`` entries) may be reached over plain http: the emulator's own and
    allowed hosts; loopback always may.
    """
    f = spec.references_field
    if f is None or not isinstance(references, list | tuple) or not all(isinstance(v, str) for v in references):
        return []
    problems: list[Problem] = []
    total = spec.max_total_images
    counted = isinstance(count, int) and not isinstance(count, bool)
    if total is not None and counted and len(references) + count > total:
        room = total - len(references)
        fixes = (Fix(f"set count to {room}", {"count": room}),) if room in COUNT_RANGE else ()
        said = (
            f"{len(references)} references plus {count} images is {len(references) + count}; "
            f"{spec.short_name} takes at most {total} in all: ask for at most {max(room, 0)} images "
            "or give fewer references"
        )
        problems.append(Problem.of(f, said, "too_many", fixes=fixes))
    plain = {h.lower() for h in http_hosts}
    for url in references:
        if url.startswith("data:"):
            problems.extend(_inline_problems(f, url))
            continue
        scheme, netloc = _url_host(url)
        host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
        if scheme == "https" and netloc:
            continue
        if scheme == "http" and netloc and (is_loopback(host) or netloc in plain or host in plain):
            continue
        what = "has no scheme (a local file?)" if not scheme else f"is not https but {scheme}:"
        said = (
            f"{url!r} {what}: references must be https URLs or images sent inline. Give the URL of a public "
            "image, or pass the local file (a path, a PIL image or bytes) to a client's submit, which sends it "
            "inline (see the guide's 'Reference series')"
        )
        problems.append(Problem.of(f, said, "not_https"))
    return problems


def server_problems(model: str | ModelSpec, payload: Mapping[str, Any]) -> list[Problem]:
    """Only what the service itself rejects (``SERVER_ENFORCED``): what the emulator answers 422 for."""
    spec = get_model(model)
    problems = [p for p in _schema_problems(spec, payload) if p.code in SERVER_ENFORCED]
    refs = spec.references_field
    if refs is not None:  # references plus images within the limit (UNCONFIRMED, as other hosts of the models)
        count = payload.get(spec.count_field.wire, spec.count_field.default)
        found = reference_problems(spec, payload.get(refs.wire), count)
        problems += [p for p in found if p.code in ("too_many", "type")]  # not https: the service fetches what it can
    return problems


def unencodable(payload: Mapping[str, Any]) -> Iterator[tuple[str, int, str]]:
    """(field, position, character) of each string value that cannot be encoded as UTF-8 (a lone surrogate)."""
    for wire, value in payload.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                yield str(wire), exc.start, value[exc.start]


def validate_payload(
    model: str | ModelSpec, payload: Mapping[str, Any] | object, *, http_hosts: Iterable[str] = ()
) -> Report:
    """Validate raw wire JSON for a model; every problem at once, in time linear in the payload's size.

    ``http_hosts``: hosts whose references may be plain http (see ``reference_problems``).
    """
    spec = get_model(model)
    if not isinstance(payload, Mapping):
        return Report(
            spec.id, (Problem("payload", f"must be a JSON object, got {type(payload).__name__}", code="type"),)
        )
    problems = _schema_problems(spec, payload)
    seed_field = spec.role("seed")
    seed = payload.get(seed_field.wire) if seed_field else None
    if isinstance(seed, int) and not isinstance(seed, bool) and seed not in SEED_RANGE:
        beyond = seed not in INT64_RANGE  # no API takes it, and no ledger column holds it
        said = f"{seed} is outside {SEED_RANGE.start}..{SEED_RANGE.stop - 1}, the range the upstream model documents"
        said += (
            ", and beyond any 64-bit integer: use a seed in that range" if beyond else "; it may be rejected or wrapped"
        )
        severity: Severity = "error" if beyond else "warning"
        problems.append(Problem("seed", said, severity, "seed_range", "seed"))
    for wire, position, char in unencodable(payload):
        f = spec.field(wire)
        said = (
            f"holds a character that cannot be sent at position {position} ({char!r}, a lone surrogate, often "
            "left by a bad copy-paste): remove it"
        )
        problems.append(Problem(f.name if f else wire, said, code="unencodable", wire=wire))
    count = payload.get(spec.count_field.wire, spec.count_field.default)
    refs = spec.references_field
    if refs is not None:
        problems.extend(reference_problems(spec, payload.get(refs.wire), count, http_hosts=http_hosts))
    prompt = payload.get(spec.prompt_field.wire)
    if isinstance(prompt, str):
        problems.extend(_check_prompt_count(spec, prompt, count))
    return Report(spec.id, tuple(problems), dict(payload))
