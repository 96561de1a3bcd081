"""What the service answers, read tolerantly into seqnb's model. No I/O here.

Every reader takes any JSON value and never raises: what it can read becomes plain values
(statuses in seqnb's words, image URLs, ISO 8601 UTC timestamps, checked request ids); what it
cannot becomes a ``problem`` (keep polling) or a ``failed`` state quoting the raw answer, cut short.
Unknown fields are ignored.

- output: ``{"images": [...]}``, ``{"image": ...}``, a list, or one string; entries are URLs or
  ``{"url": ...}``;
- timestamps: ISO strings (naive means UTC) or epoch numbers in seconds or milliseconds;
- cost: a top-level ``cost`` in a result answer (asked with ``include_cost=true``), a finite
  non-negative JSON number in USD, as RunComfy's own nodes read it; anything else (a string, a
  negative number, NaN, none at all) is an unknown cost with a problem saying why;
- request ids: RunComfy's own pattern, ``[a-zA-Z0-9_-]{1,128}``, checked before they go into a URL path
  (the one rule for an answer's id and an id a user attaches).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "REQUEST_ID_RULE",
    "CancelAnswer",
    "Observation",
    "RunStatus",
    "error_code",
    "error_fields",
    "error_message",
    "image_urls",
    "iso_time",
    "normalize_status",
    "quote",
    "read_cancel",
    "read_cost",
    "read_result",
    "read_status",
    "request_id",
]

RunStatus = Literal[
    "created", "submitting", "in_queue", "in_progress", "completed", "failed", "cancelled", "unknown", "lost"
]

_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""RunComfy's own clients check a request id against this before it goes into a URL."""
REQUEST_ID_RULE = "letters, digits, '-' and '_' only, at most 128 of them"
_URL = re.compile(r"[^\s\x00-\x1f\x7f]+")
# What the ledger (pandas datetime64[ns]) can hold, with room: anything outside is no real job time.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(2200, 1, 1, tzinfo=UTC).timestamp()

_SERVER_STATUS: dict[str, RunStatus] = {
    **dict.fromkeys(("in_queue", "queued", "pending"), "in_queue"),
    **dict.fromkeys(("in_progress", "running", "processing"), "in_progress"),
    **dict.fromkeys(("completed", "succeeded", "success"), "completed"),
    **dict.fromkeys(("failed", "error"), "failed"),
    **dict.fromkeys(("cancelled", "canceled"), "cancelled"),
}
"""Each status a service may answer (RunComfy's words and their common variants) in seqnb's words."""


def normalize_status(value: Any) -> RunStatus | None:
    """A service status in seqnb's words (RunComfy's variants included), or None if unknown."""
    return _SERVER_STATUS.get(value.strip().lower()) if isinstance(value, str) else None


def quote(value: Any, limit: int = 200) -> str:
    """The raw answer as text, cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def request_id(value: Any) -> str | None:
    """The request id as a string when it is one by RunComfy's rule (``REQUEST_ID_RULE``), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def iso_time(value: Any) -> str | None:
    """A timestamp as ISO 8601 UTC with milliseconds (``2025-01-02T03:04:05.000Z``), or None if unreadable."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
                seconds = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()  # naive means UTC
            except (OverflowError, ValueError, OSError):
                return None
    if seconds is None or not math.isfinite(seconds):
        return None
    if seconds > _LATEST:  # milliseconds since the epoch
        seconds /= 1000.0
    if not _EARLIEST <= seconds < _LATEST:
        return None
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _url(entry: Any) -> str | None:
    if isinstance(entry, dict):
        entry = entry.get("url")
    if isinstance(entry, str):
        url = entry.strip()
        if _URL.fullmatch(url):
            return url
    return None


def _urls(value: Any) -> list[str] | None:
    entries = value if isinstance(value, list) else [value]
    urls = [u for u in map(_url, entries) if u is not None]
    return urls if urls or not entries else None


def image_urls(output: Any) -> list[str] | None:
    """The image URLs of a completed job's ``output``; None when it holds something that is no URL at all.

    An absent output or an empty list is an empty list (the model returned nothing); unreadable
    entries inside a list are skipped as long as one entry is a URL.
    """
    if output is None:
        return []
    if isinstance(output, dict):
        images = output.get("images")
        if images is not None and images != []:
            return _urls(images)
        image = output.get("image")
        if image is not None:
            return _urls(image)
        return [] if "images" in output else None
    return _urls(output) if isinstance(output, list | str) else None


def _text(value: Any, limit: int = 300) -> str:
    if isinstance(value, dict):
        for key in ("message", "error_message", "detail", "error"):
            if value.get(key):
                return _text(value[key], limit)
    if isinstance(value, list):
        return "; ".join(_text(v, limit) for v in value[:5])[:limit]
    text = value if isinstance(value, str) else quote(value, limit)
    return text[:limit]


def error_message(body: Any) -> str:
    """The service's words in an error answer (``error_message``, ``message``, ``error`` or ``detail``)."""
    if isinstance(body, dict):
        for key in ("error_message", "message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, list):
                parts = []
                for item in value[:20]:
                    if isinstance(item, dict):
                        loc = item.get("loc")
                        where = ".".join(str(x) for x in loc if x != "body") if isinstance(loc, list) else ""
                        msg = _text(item.get("msg", item))
                        parts.append(f"{where}: {msg}" if where else msg)
                    else:
                        parts.append(_text(item))
                return "; ".join(parts)[:1000]
            if value:
                return _text(value, 1000)
    return quote(body, 300) if body else "no details"


def error_fields(body: Any) -> list[str]:
    """The input fields a validation error names (``detail[].loc``)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return []
    return [str(d["loc"][-1]) for d in detail if isinstance(d, dict) and isinstance(d.get("loc"), list) and d["loc"]]


def error_code(body: Any) -> tuple[bool, int | None]:
    """(whether the answer carries an ``error_code``, its number if it is one)."""
    value = body.get("error_code") if isinstance(body, dict) else None
    if not value:
        return False, None
    if isinstance(value, int) and not isinstance(value, bool):
        return True, value
    if isinstance(value, str) and value.strip().isdigit():
        return True, int(value.strip())
    return True, None


@dataclass(frozen=True)
class Observation:
    """What one status or result answer says about a run."""

    status: RunStatus | None
    """None: the answer could not be read (see ``problem``); ask again later."""
    queue_position: int | None = None
    images: tuple[str, ...] = ()
    error: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    problem: str | None = None
    cost: Decimal | None = None
    """What the service says the run cost, in USD (a result answer of a run that ended); None: not said."""
    cost_problem: str | None = None
    """Why an ended run's cost is unknown (no ``cost``, or one that is no amount)."""


def _position(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_status(body: Any) -> Observation:
    """A status answer: ``{status, queue_position?}``."""
    status = normalize_status(body.get("status")) if isinstance(body, dict) else None
    if status is None:
        return Observation(None, problem=f"the service answered a status seqnb does not know: {quote(body)}")
    assert isinstance(body, dict)
    position = _position(body.get("queue_position")) if status == "in_queue" else None
    return Observation(status, queue_position=position)


def read_cost(body: Any) -> tuple[Decimal | None, str | None]:
    """(the USD ``cost`` of a result answer, or None; why it is None) — a finite non-negative number or nothing."""
    value = body.get("cost") if isinstance(body, dict) else None
    if value is None:
        return None, "the service did not say what this run cost (no cost in its result): seqnb counts the estimate"
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return Decimal(str(value)), None
    return (
        None,
        f"the service's cost {quote(value, 60)} is not an amount of zero or more USD: seqnb counts the estimate",
    )


def read_result(body: Any) -> Observation:
    """A result answer: ``{status, output, created_at, finished_at, error}`` (the current state before the end)."""
    seen = read_status(body)
    if seen.status is None:
        return seen
    assert isinstance(body, dict)
    created, finished = iso_time(body.get("created_at")), iso_time(body.get("finished_at"))
    ended: dict[str, Any] = {"created_at": created, "finished_at": finished}
    if seen.status in ("completed", "failed", "cancelled"):
        ended["cost"], ended["cost_problem"] = read_cost(body)
    if seen.status == "completed":
        urls = image_urls(body.get("output"))
        if urls is None:
            output = quote(body.get("output"))
            error = f"the service says completed, but its output holds no image URL seqnb can read: {output}"
            return Observation("failed", error=error, **ended)
        return Observation("completed", images=tuple(urls), **ended)
    if seen.status == "failed":
        error = _text(body.get("error")) if body.get("error") else "failed"
        return Observation("failed", error=error, **ended)
    if seen.status == "cancelled":
        return Observation("cancelled", **ended)
    return Observation(seen.status, queue_position=seen.queue_position, created_at=created, finished_at=finished)


@dataclass(frozen=True)
class CancelAnswer:
    """What a cancel answer says: ``cancelled``, ``not_cancellable``, or None when it cannot be read."""

    outcome: Literal["cancelled", "not_cancellable"] | None
    status: RunStatus | None = None
    problem: str | None = None


def read_cancel(body: Any) -> CancelAnswer:
    """A cancel answer: ``{status, outcome}``."""
    said = body if isinstance(body, dict) else {}  # anything else is not understood
    outcome, status = said.get("outcome"), normalize_status(said.get("status"))
    if outcome in ("cancelled", "canceled") or status == "cancelled":
        return CancelAnswer("cancelled", "cancelled")
    if outcome == "not_cancellable" or status in ("in_progress", "completed", "failed"):
        return CancelAnswer("not_cancellable", status)
    return CancelAnswer(None, status, problem=f"the service's answer to cancel was not understood: {quote(body)}")
