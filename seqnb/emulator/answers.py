"""The building blocks of the emulator's answers: error bodies, URLs, times, the parsed submit, a dropped connection,
and who may use its controls and uploads.

I/O-free apart from ``Drop``, the answer that starts and then closes the connection (an injected
fault); its exception is kept out of uvicorn's error log.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from ..model.spec import COUNT_RANGE, ModelSpec
from ..model.validation import server_problems
from .config import EmulatorConfig

__all__ = [
    "BAD_BODY",
    "Drop",
    "DroppedConnection",
    "bad_body",
    "control_refusal",
    "error_answer",
    "iso_time",
    "parse_submit",
    "request_urls",
    "service_root",
]


class DroppedConnection(Exception):
    """Raised after a response has started, so the server closes the connection mid-answer."""


class QuietDrops(logging.Filter):
    """Keeps the dropped connections the emulator injects out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DroppedConnection):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


logging.getLogger("uvicorn.error").addFilter(QuietDrops())


class Drop(Response):
    """Starts an answer, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        raise DroppedConnection


def iso_time(ts: float | None) -> str | None:
    """A time as the service writes it (ISO 8601 in UTC, milliseconds, ``Z``), or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_answer(status: int, message: str, error_code: int | None = None) -> JSONResponse:
    """An error as the service answers it: ``{error_code?, error_message}`` with this HTTP status."""
    body: dict[str, Any] = {"error_message": message}
    if error_code is not None:
        body = {"error_code": error_code, **body}
    return JSONResponse(body, status_code=status)


BAD_BODY = 400000
"""The emulator's ``error_code`` for a submit body that is no JSON object (RunComfy documents none for it;
like 413001 for a body too large, the emulator's own, so that every error it answers carries a code)."""


def bad_body(message: str) -> JSONResponse:
    """A 400 for a body that is no JSON object, with its ``error_code`` as every other error has."""
    return error_answer(400, message, BAD_BODY)


def parse_submit(spec: ModelSpec, body: bytes) -> tuple[dict[str, Any], int] | JSONResponse:
    """The payload and its count, or the answer refusing it. CPU-bound: runs in a worker thread."""
    try:
        payload = json.loads(body or b"null")
    except json.JSONDecodeError as exc:
        return bad_body(f"Body is not valid JSON: {exc}")
    except (ValueError, RecursionError) as exc:  # numbers past int's digit limit, nesting past the stack
        return bad_body(f"Body is not JSON this service can read: {type(exc).__name__}")
    if not isinstance(payload, dict):
        return bad_body("Body must be a JSON object with the model's input fields")
    rejected = server_problems(spec, payload)
    if rejected:
        detail = [{"loc": ["body", p.wire], "msg": p.message, "type": p.code} for p in rejected]
        return JSONResponse({"detail": detail}, status_code=422)
    count = int(payload.get(spec.count_field.wire, spec.count_field.default))
    if count not in COUNT_RANGE:  # pragma: no cover - the enum check already refused it
        return error_answer(422, "bad count")
    return payload, count


def service_root(request: Request) -> str:
    """The scheme and host this call reached, as the start of the URLs in the answer."""
    host = request.headers.get("host") or "127.0.0.1"
    return f"{request.scope.get('scheme', 'http')}://{host}"


def request_urls(request: Request, request_id: str) -> dict[str, str]:
    """The status and result URLs of a request."""
    root = f"{service_root(request)}/v1/requests/{request_id}"
    return {"status_url": f"{root}/status", "result_url": f"{root}/result"}


def control_refusal(config: EmulatorConfig, request: Request) -> Response | None:
    """Why a control route (``/_emulator/*``) or an upload will not answer this call, or None.

    404 when the controls are off where the call arrived; 403 when a web page made it (it carries an
    ``Origin``, or a ``Sec-Fetch-Site`` other than ``none``: any page the user opens can send requests
    to loopback); 401 without ``config.control_token`` (the token, else this process's secret).
    """
    server = request.scope.get("server")
    if not config.controls_for(server[0] if server else None):
        return PlainTextResponse("Not Found", status_code=404)
    if "origin" in request.headers or request.headers.get("sec-fetch-site", "none").lower() != "none":
        message = "A web page may not use the emulator's controls or uploads: call them from a program"
        return error_answer(403, message, 403001)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), config.control_token):
        needs = "the emulator's token" if config.token is not None else "the control token it printed at start"
        return error_answer(401, f"The emulator's controls and uploads need Authorization: Bearer <{needs}>", 400004)
    return None
