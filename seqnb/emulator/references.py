"""What the emulator reads of the references a submit carries; no URL is ever fetched.

An inline image (a base64 data URI, as RunComfy's own tools send references) is decoded and held to
their caps (32 megapixels, 6 MiB as PNG) and to the rules the emulator's catalog serves for the field
(``catalog.VALIDATIONS``): a submit that breaks one is answered 422 with the rule's own words. An
uploaded file (``POST /files``) is read by its URL (``state.Uploads.read``). Any other URL is taken as given and never
fetched, so a reference can never make the emulator call the network, loopback or a private
address (another service on this machine, a router's admin page).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Sequence
from typing import Any

from PIL import Image

from ..model.references import MAX_INLINE_BYTES, MAX_INLINE_PIXELS, StandIn, is_image_data_uri
from ..model.spec import FieldSpec
from ..model.validation import Problem, dimension_problems

__all__ = ["decoded", "inline_problems"]


def decoded(reference: str) -> bytes | None:
    """The bytes of a base64 image data URI, or None when it is none."""
    if not is_image_data_uri(reference):
        return None
    try:
        return base64.b64decode(reference.partition(",")[2], validate=True)
    except binascii.Error:
        return None


def _problem(field: FieldSpec, message: str, code: Any = "type") -> Problem:
    return Problem(field.name, message, code=code, wire=field.wire)


def inline_problems(field: FieldSpec, references: Any) -> list[Problem]:
    """What is wrong with the inline images of a references field (URLs are not looked at): not a base64 image, over
    the caps, or against the field's ``validations``. CPU-bound: the app runs it in a worker thread."""
    if not isinstance(references, Sequence) or isinstance(references, str):
        return []
    problems: list[Problem] = []
    for index, reference in enumerate(references):
        if not isinstance(reference, str) or not (is_image_data_uri(reference) or StandIn.parse(reference)):
            continue  # a URL (never fetched), or another kind of data URI (the spec's rules refuse it)
        name = f"{field.wire}[{index}]"
        data = decoded(reference)
        if data is None:
            problems.append(_problem(field, f"{name} is a data URI but not a base64 image"))
            continue
        if len(data) > MAX_INLINE_BYTES:
            message = f"{name} is {len(data):,} bytes; an inline image may be at most {MAX_INLINE_BYTES:,}"
            problems.append(_problem(field, message, "too_large"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
        except Exception as exc:  # anything Pillow cannot open is no image
            problems.append(_problem(field, f"{name} is not an image ({type(exc).__name__})"))
            continue
        if width * height > MAX_INLINE_PIXELS:
            message = f"{name} is {width}x{height}; an inline image may have at most {MAX_INLINE_PIXELS:,} pixels"
            problems.append(_problem(field, message, "too_large"))
            continue
        problems.extend(dimension_problems(field, name, width, height))
    return problems
