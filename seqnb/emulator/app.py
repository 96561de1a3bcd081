"""The emulator's ASGI app: RunComfy's routes over the emulator's state, with auth, errors and faults.

Routes (as RunComfy's model pages and CLI use them; ``/v1`` is part of RunComfy's ``model_api_base``):
    POST /v1/models/{model_id}              submit   -> {request_id, status_url, result_url, cancel_url}
    GET  /v1/requests/{request_id}/status   status   -> {request_id, status, queue_position?, status_url, result_url}
    GET  /v1/requests/{request_id}/result   result   -> {request_id, status, output, created_at, finished_at, error}
                                                        (+ cost, USD, once ended, with ?include_cost=true)
    POST /v1/requests/{request_id}/cancel   cancel   -> {request_id, status, outcome}
    GET  /v1/models?search=&category=&kind=&include_schema=&limit=&offset=   catalog -> {models, total}
    GET  /v1/models/categories              catalog  -> {categories}
    GET  /v1/models/{model_id}              catalog  -> one entry, with its input_schema
    GET  /prod/v2/balance                   balance  -> {balance_usd, currency}  (api.runcomfy.net on the real service)
    GET  /files/{name}                      images, no token needed, until they expire
    POST /files                             (emulator only, loopback, control token) keep an uploaded image -> {url}
    GET  /_emulator/counters, POST /_emulator/faults[?route=], POST /_emulator/restart   (emulator only)

Request bodies are refused with 413 as soon as they pass ``EmulatorConfig.body_limit``; JSON parsing and
validation run in a worker thread, so no request holds up the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast, get_args

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..model.spec import ModelSpec, models
from ..model.validation import server_problems
from . import catalog
from .config import EmulatorConfig
from .faults import Faults
from .faults import Route as ApiRoute
from .queue import Job
from .references import inline_problems
from .state import MAX_UPLOAD_BYTES, EmulatorState

__all__ = ["BAD_BODY", "VERSION_HEADER", "Emulator", "create_app", "error_answer"]

VERSION_HEADER = "x-seqnb-emulator"
"""Header on every answer of the emulator; its value is seqnb's version."""

Handler = Callable[[Request], Awaitable[Response]]


# --- the building blocks of the answers: I/O-free but for Drop -------------------------------


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
    """The payload and its count, or the answer refusing it (the spec's rules, and its inline images decoded and held
    to the caps and the rules its catalog serves). CPU-bound: runs in a worker thread."""
    try:
        payload = json.loads(body or b"null")
    except json.JSONDecodeError as exc:
        return bad_body(f"Body is not valid JSON: {exc}")
    except (ValueError, RecursionError) as exc:  # numbers past int's digit limit, nesting past the stack
        return bad_body(f"Body is not JSON this service can read: {type(exc).__name__}")
    if not isinstance(payload, dict):
        return bad_body("Body must be a JSON object with the model's input fields")
    served = catalog.served_spec(spec)  # the schema its catalog serves: the references' rules included
    rejected = server_problems(served, payload)
    refs = served.references_field
    if refs is not None:
        rejected += inline_problems(refs, payload.get(refs.wire))
    if rejected:
        detail = [{"loc": ["body", p.wire], "msg": p.message, "type": p.code} for p in rejected]
        return JSONResponse({"detail": detail}, status_code=422)
    return payload, int(payload.get(spec.count_field.wire, spec.count_field.default))


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


class Emulator:
    """The emulated service over HTTP: one handler per route, sharing auth, faults and body reading.

    ``Emulator(state).app`` is the Starlette app; ``app.state.emulator`` is the ``EmulatorState``.
    """

    def __init__(self, state: EmulatorState) -> None:
        from .._version import __version__

        self.state = state
        self.token = state.config.token
        self.stamp = (VERSION_HEADER.encode(), __version__.encode())
        routes = [  # the calls made most often first: the router tries them in order; then who may make each
            ("/v1/requests/{request_id}/status", self.status, "GET", "api"),
            ("/v1/requests/{request_id}/result", self.result, "GET", "api"),
            ("/files/{name}", self.file, "GET", "anyone"),
            ("/files", self.upload, "POST", "control"),
            ("/v1/requests/{request_id}/cancel", self.cancel, "POST", "api"),
            ("/v1/models", self.catalog_list, "GET", "token"),
            ("/v1/models/categories", self.catalog_categories, "GET", "token"),
            ("/v1/models/{model_id:path}", self.submit, "POST", "api"),
            ("/v1/models/{model_id:path}", self.catalog_entry, "GET", "token"),
            ("/prod/v2/balance", self.balance, "GET", "token"),
            ("/", self.index, "GET", "anyone"),
            ("/_emulator/counters", self.counters, "GET", "control"),
            ("/_emulator/faults", self.set_faults, "POST", "control"),
            ("/_emulator/restart", self.restart, "POST", "control"),
        ]
        self.app = Starlette(
            routes=[Route(path, self.stamped(handler, who), methods=[method]) for path, handler, method, who in routes],
            exception_handlers={HTTPException: self.http_error},
        )
        self.app.state.emulator = state

    def stamped(self, handler: Handler, who: str) -> Handler:
        """The handler behind its gate, its answers carrying the version header (cheaper per call than a middleware).

        ``who``: ``token`` (the API's token), ``control`` (``control_refusal``), ``api`` (the handler's own
        ``guard``: the token and the faults), ``anyone``.
        """

        async def endpoint(request: Request) -> Response:
            if who == "token" and not self.authorized(request):
                response = self.unauthorized()
            elif who == "control" and (refused := self.controls_refusal(request)) is not None:
                response = refused
            else:
                response = await handler(request)
            response.raw_headers.append(self.stamp)
            return response

        endpoint.__name__ = handler.__name__
        return endpoint

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Starlette's own answers (no such route, method not allowed), stamped like the rest."""
        assert isinstance(exc, HTTPException)
        response = PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        response.raw_headers.append(self.stamp)
        return response

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    # --- shared preambles ----------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.token is None or secrets.compare_digest(token.strip(), self.token)

    def unauthorized(self) -> Response:
        self.state.counters.unauthorized += 1
        return error_answer(401, "Missing, invalid or expired token: send Authorization: Bearer <token>", 400004)

    async def guard(self, request: Request, route: ApiRoute) -> tuple[Response | None, bool]:
        """Auth and per-call faults. Returns (a response to send instead, drop-after flag)."""
        if not self.authorized(request):
            return self.unauthorized(), False
        dice = self.state.route_dice.get(route, self.state.dice)
        fault = dice.for_call(route)
        if fault is None:
            return None, False
        counters = self.state.counters
        counters.faults[fault] += 1
        counters.faults[f"{route}.{fault}"] += 1
        if fault == "rate_limit":
            response = error_answer(429, "Too many requests (emulated)")
            response.headers["Retry-After"] = f"{dice.faults.retry_after:g}"
            return response, False
        if fault == "server_error":
            code = dice.pick((500, 502, 503))
            return error_answer(code, f"Upstream error {code} (emulated)"), False
        if fault == "drop":
            return Drop(), False
        if fault == "error_200":
            return JSONResponse({"error_code": 500001, "error_message": "Internal error (emulated)"}), False
        if fault == "slow":
            await asyncio.sleep(dice.faults.slow_seconds)
            return None, False
        return None, True  # drop_after

    async def open_job(self, request: Request, route: ApiRoute) -> tuple[Job | None, Response, bool]:
        """Auth, faults and the request id of a status/result/cancel call: (job, or the answer instead)."""
        early, drop_after = await self.guard(request, route)
        if early is not None:
            return None, early, False
        rid = request.path_params["request_id"]
        job = self.state.queue.get(rid)
        if job is None:
            return None, error_answer(404, f"Request {rid!r} not found or expired", 404001), False
        return job, Response(), drop_after

    async def read_body(self, request: Request, limit: int | None = None) -> bytes | Response:
        """The body, read while it stays within ``limit`` (default ``body_limit``); past it, the 413 answer (the rest is
        never read)."""
        limit = limit or self.config.body_limit
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return self.too_large(limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return self.too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def too_large(self, limit: int) -> Response:
        self.state.counters.too_large += 1
        response = error_answer(
            413, f"Request body is larger than {limit} bytes: send at most {limit // 1024} KB", 413001
        )
        response.headers["Connection"] = "close"
        return response

    def controls_refusal(self, request: Request) -> Response | None:
        """``control_refusal``, counted among the unauthorized calls when it refuses one."""
        refused = control_refusal(self.config, request)
        if refused is not None and refused.status_code != 404:
            self.state.counters.unauthorized += 1
        return refused

    @staticmethod
    def answer(response: Response, drop_after: bool) -> Response:
        return Drop() if drop_after else response

    # --- the request lifecycle -----------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        early, drop_after = await self.guard(request, "submit")
        if early is not None:
            return early
        counters = self.state.counters
        model_id = request.path_params["model_id"].strip("/")
        spec = next((m for m in models() if m.id == model_id), None)
        if spec is None:
            counters.submits_rejected += 1
            return error_answer(400, f"Invalid model id {model_id!r}", 400001)
        body = await self.read_body(request)
        if isinstance(body, Response):
            counters.submits_rejected += 1
            return body
        parsed = await run_in_threadpool(parse_submit, spec, body)
        if isinstance(parsed, Response):
            counters.submits_rejected += 1
            return parsed
        payload, count = parsed
        price = self.state.overdraws(spec.id, count)
        if price is not None:
            counters.submits_rejected += 1
            left = self.state.account.available(self.state.queue.clock())
            return error_answer(400, f"Insufficient balance: {left} left, {price} needed", 400002)
        job = self.state.accept(spec.id, payload, count)
        body_out = {
            "request_id": job.id,
            **request_urls(request, job.id),
            "cancel_url": f"{service_root(request)}/v1/requests/{job.id}/cancel",
        }
        return self.answer(JSONResponse(body_out), drop_after)

    async def status(self, request: Request) -> Response:
        self.state.counters.status_calls += 1
        job, instead, drop_after = await self.open_job(request, "status")
        if job is None:
            return instead
        state = self.state.status_of(job)
        body: dict[str, Any] = {"request_id": job.id, "status": state}
        if state == "in_queue":
            body["queue_position"] = self.state.queue.position(job)
        body.update(request_urls(request, job.id))
        return self.answer(JSONResponse(body), drop_after)

    async def result(self, request: Request) -> Response:
        self.state.counters.result_calls += 1
        job, instead, drop_after = await self.open_job(request, "result")
        if job is None:
            return instead
        state = self.state.status_of(job)
        finished = None
        output = None
        error = None
        if state in ("completed", "failed", "cancelled"):
            end = job.cancelled_at if state == "cancelled" else job.finished
            assert end is not None
            finished = job.created_at + (end - job.submitted)
        if state == "completed":
            output = {"images": self.state.image_urls(job, service_root(request))}
        elif state == "failed":
            error = job.fail_message
        body: dict[str, Any] = {
            "request_id": job.id,
            "status": state,
            "output": output,
            "created_at": iso_time(job.created_at),
            "finished_at": iso_time(finished),
            "error": error,
        }
        if finished is not None and request.query_params.get("include_cost", "").lower() in ("true", "1"):
            body["cost"] = float(self.state.account.charge(job, state))  # RunComfy's include_cost: USD, a number
        return self.answer(JSONResponse(body), drop_after)

    async def cancel(self, request: Request) -> Response:
        self.state.counters.cancel_calls += 1
        job, instead, drop_after = await self.open_job(request, "cancel")
        if job is None:
            return instead
        already = job.cancelled_at is not None
        if self.state.queue.cancel(job):
            if not already:
                self.state.counters.cancels += 1
            body = {"request_id": job.id, "status": "cancelled", "outcome": "cancelled"}
        else:
            body = {"request_id": job.id, "status": self.state.status_of(job), "outcome": "not_cancellable"}
        return self.answer(JSONResponse(body), drop_after)

    async def upload(self, request: Request) -> Response:
        """Keep an uploaded image (a local reference) and answer the URL serving it; as the controls, by program only."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not media.startswith("image/"):
            return error_answer(
                415, f"Upload an image (Content-Type image/png, image/jpeg...), not {media or 'nothing'!r}"
            )
        body = await self.read_body(request, MAX_UPLOAD_BYTES)
        if isinstance(body, Response):
            return body
        name = self.state.uploads.add(body, media)
        return JSONResponse({"url": f"{service_root(request)}/files/{name}"})

    async def file(self, request: Request) -> Response:
        name = request.path_params["name"]
        uploaded = self.state.uploads.get(name)
        if uploaded is not None:
            return Response(uploaded[0], media_type=uploaded[1])
        where = self.state.files.get(name)
        job = self.state.queue.jobs.get(where[0]) if where else None
        if where is None or job is None or job.finished is None:
            return error_answer(404, "No such file")
        if self.state.queue.clock() > job.finished + job.image_ttl:
            self.state.counters.files_expired += 1
            return error_answer(404, "This image URL has expired")
        data = await run_in_threadpool(self.state.image_bytes, job, where[1], name)
        self.state.counters.files_served += 1
        media = "image/png" if name.endswith(".png") else "image/jpeg"
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    # --- catalog and balance -------------------------------------------------------------------

    async def catalog_list(self, request: Request) -> Response:
        self.state.counters.catalog_calls += 1
        try:
            query = catalog.CatalogQuery.parse(request.query_params)
        except ValueError as exc:
            return error_answer(400, f"Bad query: {exc}")
        return JSONResponse(catalog.page(models(), query, self.config.price))

    async def catalog_categories(self, request: Request) -> Response:
        self.state.counters.catalog_calls += 1
        return JSONResponse({"categories": catalog.categories(models())})

    async def catalog_entry(self, request: Request) -> Response:
        self.state.counters.catalog_calls += 1
        model_id = request.path_params["model_id"].strip("/")
        spec = next((m for m in models() if m.id == model_id), None)
        if spec is None:
            known = ", ".join(m.id for m in models())
            return error_answer(404, f"Invalid model id {model_id!r}: this service has {known}", 400001)
        return JSONResponse(catalog.entry(spec, self.config.price(spec.id), include_schema=True))

    async def balance(self, request: Request) -> Response:
        self.state.counters.balance_calls += 1
        left = self.state.account.balance(self.state.queue.advance())
        return JSONResponse({"balance_usd": float(left), "currency": "USD"})

    # --- the emulator's own controls -----------------------------------------------------------

    async def counters(self, request: Request) -> Response:
        snap = self.state.counters.snapshot()
        snap["queue_depth"] = self.state.queue.depth()
        return JSONResponse(snap)

    async def set_faults(self, request: Request) -> Response:
        route = request.query_params.get("route") or None
        if route is not None and route not in get_args(ApiRoute):
            return error_answer(
                400, f"Bad route {route!r}: use one of {', '.join(get_args(ApiRoute))}, or none for all"
            )
        route_name = cast("ApiRoute | None", route)
        body = await self.read_body(request)
        if isinstance(body, Response):
            return body
        try:
            faults = Faults.from_json(json.loads(body or b"{}"))
        except (ValueError, TypeError, RecursionError) as exc:
            return error_answer(400, f"Bad faults: {exc}")
        self.state.set_faults(faults, route_name)
        return JSONResponse(asdict(faults))

    async def restart(self, request: Request) -> Response:
        self.state.restart()
        return JSONResponse({"restarted": True})

    async def index(self, request: Request) -> Response:
        return JSONResponse(
            {
                "service": "seqnb emulator of RunComfy's Model API",
                "models": [m.id for m in models()],
                "submit": f"POST {service_root(request)}/v1/models/{{model_id}}",
            }
        )


def create_app(
    config: EmulatorConfig | None = None,
    state: EmulatorState | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The ASGI app; ``app.state.emulator`` is its ``EmulatorState`` (made from ``config`` and ``clock`` unless given)."""
    return Emulator(state or EmulatorState(config, clock=clock)).app
