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
from typing import Any

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
from .faults import ALL_ROUTES, Faults
from .faults import Route as ApiRoute
from .queue import Job
from .references import inline_problems
from .state import MAX_UPLOAD_BYTES, EmulatorState

__all__ = ["BAD_BODY", "VERSION_HEADER", "Emulator", "Refusal", "create_app", "error_answer"]

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


class Refusal(Exception):
    """An answer given instead of the route's own (no token, a fault, an unknown request, a body refused): raised by
    any step of a handler, answered by the route's gate."""

    def __init__(self, response: Response) -> None:
        self.response = response


def parse_submit(spec: ModelSpec, body: bytes) -> tuple[dict[str, Any], int]:
    """The payload and its count, or the ``Refusal`` of it (the spec's rules, and its inline images decoded and held
    to the caps and the rules its catalog serves). CPU-bound: runs in a worker thread."""
    try:
        payload = json.loads(body or b"null")
    except json.JSONDecodeError as exc:
        raise Refusal(error_answer(400, f"Body is not valid JSON: {exc}", BAD_BODY)) from None
    except (ValueError, RecursionError) as exc:  # numbers past int's digit limit, nesting past the stack
        said = f"Body is not JSON this service can read: {type(exc).__name__}"
        raise Refusal(error_answer(400, said, BAD_BODY)) from None
    if not isinstance(payload, dict):
        raise Refusal(error_answer(400, "Body must be a JSON object with the model's input fields", BAD_BODY))
    served = catalog.served_spec(spec)  # the schema its catalog serves: the references' rules included
    rejected = server_problems(served, payload)
    refs = served.references_field
    if refs is not None:
        rejected += inline_problems(refs, payload.get(refs.wire))
    if rejected:
        detail = [{"loc": ["body", p.wire], "msg": p.message, "type": p.code} for p in rejected]
        raise Refusal(JSONResponse({"detail": detail}, status_code=422))
    return payload, int(payload.get(spec.count_field.wire, spec.count_field.default))


def service_root(request: Request) -> str:
    """The scheme and host this call reached, as the start of the URLs in the answer."""
    host = request.headers.get("host") or "127.0.0.1"
    return f"{request.scope.get('scheme', 'http')}://{host}"


def request_urls(request: Request, request_id: str, *calls: str) -> dict[str, str]:
    """The URLs of a request's ``calls`` (``status``, ``result``, ``cancel``), as ``{call}_url``."""
    root = f"{service_root(request)}/v1/requests/{request_id}"
    return {f"{call}_url": f"{root}/{call}" for call in calls}


def bearer(request: Request) -> str | None:
    """The token of the call's ``Authorization: Bearer`` header, or None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class Emulator:
    """The emulated service over HTTP: one handler per route, behind a gate sharing auth, faults and refusals.

    ``Emulator(state).app`` is the Starlette app; ``app.state.emulator`` is the ``EmulatorState``.
    """

    def __init__(self, state: EmulatorState) -> None:
        from .._version import __version__

        self.state = state
        self.config = state.config
        self.stamp = (VERSION_HEADER.encode(), __version__.encode())
        routes = [  # the calls made most often first: the router tries them in order; then who may make each
            ("/v1/requests/{request_id}/status", self.status, "GET", "status"),
            ("/v1/requests/{request_id}/result", self.result, "GET", "result"),
            ("/files/{name}", self.file, "GET", "anyone"),
            ("/files", self.upload, "POST", "control"),
            ("/v1/requests/{request_id}/cancel", self.cancel, "POST", "cancel"),
            ("/v1/models", self.catalog_list, "GET", "token"),
            ("/v1/models/categories", self.catalog_categories, "GET", "token"),
            ("/v1/models/{model_id:path}", self.submit, "POST", "submit"),
            ("/v1/models/{model_id:path}", self.catalog_entry, "GET", "token"),
            ("/prod/v2/balance", self.balance, "GET", "token"),
            ("/", self.index, "GET", "anyone"),
            ("/_emulator/counters", self.counters, "GET", "control"),
            ("/_emulator/faults", self.set_faults, "POST", "control"),
            ("/_emulator/restart", self.restart, "POST", "control"),
        ]
        self.app = Starlette(
            routes=[Route(path, self.gated(handler, who), methods=[method]) for path, handler, method, who in routes],
            exception_handlers={HTTPException: self.http_error},
        )
        self.app.state.emulator = state

    def gated(self, handler: Handler, who: str) -> Handler:
        """The handler behind its gate, its answers carrying the version header (cheaper per call than a middleware).

        ``who``: an API call's route (``submit``, ``status``...: the token, then the faults of that route), ``token``
        (the API's token), ``control`` (``check_controls``), ``anyone``. A ``Refusal`` raised on the way is answered.
        """

        async def endpoint(request: Request) -> Response:
            try:
                drop_after = False
                if who in ALL_ROUTES:
                    drop_after = await self.guard(request, who)
                elif who == "token" and not self.authorized(request):
                    raise Refusal(self.unauthorized())
                elif who == "control":
                    self.check_controls(request)
                response = await handler(request)
                if drop_after:  # handled, then the connection closes before the answer
                    response = Drop()
            except Refusal as refusal:
                response = refusal.response
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

    # --- the steps of the gate and the handlers -------------------------------------------------

    def authorized(self, request: Request) -> bool:
        token = bearer(request)
        if not token:
            return False
        return self.config.token is None or secrets.compare_digest(token, self.config.token)

    def unauthorized(self) -> Response:
        self.state.counters.unauthorized += 1
        return error_answer(401, "Missing, invalid or expired token: send Authorization: Bearer <token>", 400004)

    async def guard(self, request: Request, route: ApiRoute) -> bool:
        """Auth and per-call faults of an API call; ``Refusal`` for an answer instead, else whether to drop the
        connection once the call is handled (``drop_after``)."""
        if route != "submit":  # status_calls...: counted as they arrive, answered or refused
            name = f"{route}_calls"
            setattr(self.state.counters, name, getattr(self.state.counters, name) + 1)
        if not self.authorized(request):
            raise Refusal(self.unauthorized())
        dice = self.state.route_dice.get(route, self.state.dice)
        fault = dice.for_call(route)
        if fault is None:
            return False
        counters = self.state.counters
        counters.faults[fault] += 1
        counters.faults[f"{route}.{fault}"] += 1
        if fault == "rate_limit":
            response = error_answer(429, "Too many requests (emulated)")
            response.headers["Retry-After"] = f"{dice.faults.retry_after:g}"
            raise Refusal(response)
        if fault == "server_error":
            code = dice.pick((500, 502, 503))
            raise Refusal(error_answer(code, f"Upstream error {code} (emulated)"))
        if fault == "drop":
            raise Refusal(Drop())
        if fault == "error_200":
            raise Refusal(JSONResponse({"error_code": 500001, "error_message": "Internal error (emulated)"}))
        if fault == "slow":
            await asyncio.sleep(dice.faults.slow_seconds)
            return False
        return True  # drop_after

    def check_controls(self, request: Request) -> None:
        """``Refusal`` when a control route (``/_emulator/*``) or an upload will not answer this call.

        404 when the controls are off where the call arrived; 403 when a web page made it (it carries an
        ``Origin``, or a ``Sec-Fetch-Site`` other than ``none``: any page the user opens can send requests
        to loopback); 401 without ``config.control_token`` (the token, else this process's secret). The last
        two are counted among the unauthorized calls.
        """
        server = request.scope.get("server")
        if not self.config.controls_for(server[0] if server else None):
            raise Refusal(PlainTextResponse("Not Found", status_code=404))
        if "origin" in request.headers or request.headers.get("sec-fetch-site", "none").lower() != "none":
            self.state.counters.unauthorized += 1
            message = "A web page may not use the emulator's controls or uploads: call them from a program"
            raise Refusal(error_answer(403, message, 403001))
        token = bearer(request)
        if token is None or not secrets.compare_digest(token, self.config.control_token):
            self.state.counters.unauthorized += 1
            needs = "the emulator's token" if self.config.token is not None else "the control token it printed at start"
            message = f"The emulator's controls and uploads need Authorization: Bearer <{needs}>"
            raise Refusal(error_answer(401, message, 400004))

    def job(self, request: Request) -> Job:
        """The job of a status/result/cancel call; ``Refusal`` (404001) when unknown or forgotten."""
        rid = request.path_params["request_id"]
        job = self.state.queue.get(rid)
        if job is None:
            raise Refusal(error_answer(404, f"Request {rid!r} not found or expired", 404001))
        return job

    async def read_body(self, request: Request, limit: int | None = None) -> bytes:
        """The body, read while it stays within ``limit`` (default ``body_limit``); past it, the ``Refusal`` with 413
        (the rest is never read)."""
        limit = limit or self.config.body_limit
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Refusal(self.too_large(limit))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(self.too_large(limit))
            chunks.append(chunk)
        return b"".join(chunks)

    def too_large(self, limit: int) -> Response:
        self.state.counters.too_large += 1
        response = error_answer(
            413, f"Request body is larger than {limit} bytes: send at most {limit // 1024} KB", 413001
        )
        response.headers["Connection"] = "close"
        return response

    # --- the request lifecycle -----------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        try:
            job = await self.accept(request)
        except Refusal:
            self.state.counters.submits_rejected += 1
            raise
        return JSONResponse({"request_id": job.id, **request_urls(request, job.id, "status", "result", "cancel")})

    async def accept(self, request: Request) -> Job:
        """The job a submit makes, or the ``Refusal`` of its model, its body or the balance."""
        model_id = request.path_params["model_id"].strip("/")
        spec = next((m for m in models() if m.id == model_id), None)
        if spec is None:
            raise Refusal(error_answer(400, f"Invalid model id {model_id!r}", 400001))
        payload, count = await run_in_threadpool(parse_submit, spec, await self.read_body(request))
        price = self.state.overdraws(spec.id, count)
        if price is not None:
            left = self.state.account.available(self.state.queue.clock())
            raise Refusal(error_answer(400, f"Insufficient balance: {left} left, {price} needed", 400002))
        return self.state.accept(spec.id, payload, count)

    async def status(self, request: Request) -> Response:
        job = self.job(request)
        state = self.state.status_of(job)
        body: dict[str, Any] = {"request_id": job.id, "status": state}
        if state == "in_queue":
            body["queue_position"] = self.state.queue.position(job)
        body.update(request_urls(request, job.id, "status", "result"))
        return JSONResponse(body)

    async def result(self, request: Request) -> Response:
        job = self.job(request)
        state = self.state.status_of(job)
        finished = None
        output = None
        error = None
        if state in ("completed", "failed", "cancelled"):
            assert job.end is not None
            finished = job.created_at + (job.end - job.submitted)
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
        return JSONResponse(body)

    async def cancel(self, request: Request) -> Response:
        job = self.job(request)
        already = job.cancelled_at is not None
        if self.state.queue.cancel(job):
            if not already:
                self.state.counters.cancels += 1
            body = {"request_id": job.id, "status": "cancelled", "outcome": "cancelled"}
        else:
            body = {"request_id": job.id, "status": self.state.status_of(job), "outcome": "not_cancellable"}
        return JSONResponse(body)

    async def upload(self, request: Request) -> Response:
        """Keep an uploaded image (a local reference) and answer the URL serving it; as the controls, by program only."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not media.startswith("image/"):
            return error_answer(
                415, f"Upload an image (Content-Type image/png, image/jpeg...), not {media or 'nothing'!r}"
            )
        name = self.state.uploads.add(await self.read_body(request, MAX_UPLOAD_BYTES), media)
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
        data = await run_in_threadpool(self.state.image_bytes, job, where[1])
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
        if route is not None and route not in ALL_ROUTES:
            return error_answer(400, f"Bad route {route!r}: use one of {', '.join(ALL_ROUTES)}, or none for all")
        body = await self.read_body(request)
        try:
            faults = Faults.from_json(json.loads(body or b"{}"))
        except (ValueError, TypeError, RecursionError) as exc:
            return error_answer(400, f"Bad faults: {exc}")
        self.state.set_faults(faults, route)
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
