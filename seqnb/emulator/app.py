"""The emulator's ASGI app: RunComfy's Model API routes over the queue, with auth, errors and faults.

Routes (as in shared/seeds and API-NOTES):
    POST /v1/models/{model_id}              submit   -> {request_id, status_url, result_url, cancel_url}
    GET  /v1/requests/{request_id}/status   status   -> {request_id, status, queue_position?, status_url, result_url}
    GET  /v1/requests/{request_id}/result   result   -> {request_id, status, output, created_at, finished_at, error}
    POST /v1/requests/{request_id}/cancel   cancel   -> {request_id, status, outcome}
    GET  /files/{name}                      images, no token needed, until they expire
    GET  /_emulator/counters, POST /_emulator/faults, POST /_emulator/restart   (emulator only)
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..spec import COUNT_RANGE, get_model, models, size_dimensions
from ..validation import SERVER_ENFORCED, validate_payload
from .faults import FaultDice, Faults
from .faults import Route as ApiRoute
from .images import render
from .queue import Job, JobQueue, QueueConfig

__all__ = ["Counters", "EmulatorConfig", "EmulatorState", "create_app"]


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes the emulated service."""

    token: str | None = None
    """The one token accepted; None accepts any non-empty Bearer token."""
    queue: QueueConfig = field(default_factory=QueueConfig)
    faults: Faults = field(default_factory=Faults)
    image_ttl: float = 3600.0
    """Seconds an image URL stays valid after its job completes."""
    image_format: Literal["jpeg", "png"] = "jpeg"
    balance: Decimal | None = None
    """Account balance in USD; submits that would overdraw it fail with 400002. None: unlimited."""


@dataclass
class Counters:
    """What the emulator has seen, for tests that must prove nothing happened twice."""

    submits: int = 0
    """Submits accepted (jobs created)."""
    submits_rejected: int = 0
    status_calls: int = 0
    result_calls: int = 0
    cancel_calls: int = 0
    cancels: int = 0
    """Cancels that took effect."""
    files_served: int = 0
    files_expired: int = 0
    unauthorized: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "faults"}
        out["faults"] = dict(self.faults)
        return out


class DroppedConnection(Exception):
    """Raised after a response has started, so the server closes the connection mid-answer."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, DroppedConnection):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class _Drop(Response):
    """Starts an answer, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        raise DroppedConnection


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, message: str, error_code: int | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error_message": message}
    if error_code is not None:
        body = {"error_code": error_code, **body}
    body.update(extra)
    return JSONResponse(body, status_code=status)


class EmulatorState:
    """The service's memory: queue, image files, counters, faults."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.queue = JobQueue(self.config.queue)
        self.counters = Counters()
        self.dice = FaultDice(self.config.faults)
        self.route_dice: dict[str, FaultDice] = {}
        self.balance = Decimal(str(self.config.balance)) if self.config.balance is not None else None
        self.files: dict[str, tuple[str, int]] = {}
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def faults(self) -> Faults:
        return self.dice.faults

    def set_faults(self, faults: Faults, route: ApiRoute | None = None) -> None:
        """Switch fault injection at run time, for every call or for one route (``submit``...)."""
        if route is None:
            self.dice = FaultDice(faults)
            self.route_dice.clear()
        else:
            self.route_dice[route] = FaultDice(faults)

    def dice_for(self, route: ApiRoute) -> FaultDice:
        return self.route_dice.get(route, self.dice)

    def restart(self) -> None:
        """Forget every job and file, as a restarted server would."""
        self.queue.forget_all()
        self.files.clear()

    # --- jobs --------------------------------------------------------------------------------

    def status_of(self, job: Job) -> str:
        now = self.queue.advance()
        return job.state(now)

    def accept(self, model: str, payload: dict[str, Any], count: int) -> Job:
        """Queue a job, deciding now (deterministically) what will go wrong with it."""
        job = self.queue.submit(model, payload, count)
        planned = self.dice.for_job(job.seq, count)
        if planned.fail:
            job.fail_message = "Generation failed upstream (emulated failure)"
        job.returned = planned.returned if planned.returned is not None else count
        job.image_ttl = 0.0 if planned.expire else self.config.image_ttl
        self.counters.submits += 1
        return job

    def image_urls(self, job: Job, root: str) -> list[str]:
        """The job's image URLs, minted on first sight of its completion."""
        if not job.files:
            ext = ".png" if self.config.image_format == "png" else ".jpg"
            for index in range(job.returned):
                name = secrets.token_urlsafe(18) + ext
                self.files[name] = (job.id, index)
                job.files.append(name)
        return [f"{root}/files/{name}" for name in job.files]

    def image_bytes(self, job: Job, index: int, name: str) -> bytes:
        with self._cache_lock:
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
        spec = get_model(job.model)
        prompt = str(job.payload.get(spec.prompt_field.wire, ""))
        size = job.payload.get(spec.size_field.wire) if spec.size_field else None
        size = size or spec.default("size") or "2048x2048"
        seed = job.payload.get("seed", spec.default("seed"))
        width, height = size_dimensions(str(size), prompt)
        data = render(job.model, prompt, seed, width, height, index, job.count, self.config.image_format)
        with self._cache_lock:
            self._cache[name] = data
            while len(self._cache) > 48:
                self._cache.popitem(last=False)
        return data


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> Starlette:
    """The ASGI app; ``app.state.emulator`` is its ``EmulatorState``."""
    emu = state or EmulatorState(config)

    def base(request: Request) -> str:
        host = request.headers.get("host") or "127.0.0.1"
        return f"{request.scope.get('scheme', 'http')}://{host}"

    def urls(request: Request, request_id: str) -> dict[str, str]:
        root = f"{base(request)}/v1/requests/{request_id}"
        return {"status_url": f"{root}/status", "result_url": f"{root}/result"}

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return emu.config.token is None or secrets.compare_digest(token.strip(), emu.config.token)

    async def guard(request: Request, route: ApiRoute) -> tuple[Response | None, bool]:
        """Auth and per-call faults. Returns (a response to send instead, drop-after flag)."""
        if not authorized(request):
            emu.counters.unauthorized += 1
            return _error(401, "Missing, invalid or expired token: send Authorization: Bearer <token>", 400004), False
        dice = emu.dice_for(route)
        fault = dice.for_call(route)
        if fault is None:
            return None, False
        emu.counters.faults[fault] += 1
        emu.counters.faults[f"{route}.{fault}"] += 1
        if fault == "rate_limit":
            retry = dice.faults.retry_after
            response = _error(429, "Too many requests (emulated)", None)
            response.headers["Retry-After"] = f"{retry:g}"
            return response, False
        if fault == "server_error":
            code = dice.pick((500, 502, 503))
            return _error(code, f"Upstream error {code} (emulated)"), False
        if fault == "drop":
            return _Drop(), False
        if fault == "error_200":
            return JSONResponse({"error_code": 500001, "error_message": "Internal error (emulated)"}), False
        if fault == "slow":
            await asyncio.sleep(dice.faults.slow_seconds)
            return None, False
        return None, True  # drop_after

    def answer(response: Response, drop_after: bool) -> Response:
        return _Drop() if drop_after else response

    async def open_job(request: Request, route: ApiRoute) -> tuple[Job | None, Response, bool]:
        """Auth, faults and the request id of a status/result/cancel call: (job, or the answer instead)."""
        early, drop_after = await guard(request, route)
        if early is not None:
            return None, early, False
        job = emu.queue.get(request.path_params["request_id"])
        if job is None:
            rid = request.path_params["request_id"]
            return None, _error(404, f"Request {rid!r} not found or expired", 404001), False
        return job, Response(), drop_after

    async def submit(request: Request) -> Response:
        early, drop_after = await guard(request, "submit")
        if early is not None:
            return early
        model_id = request.path_params["model_id"].strip("/")
        spec = next((m for m in models() if m.id == model_id), None)
        if spec is None:
            emu.counters.submits_rejected += 1
            return _error(400, f"Invalid model id {model_id!r}", 400001)
        try:
            payload = json.loads(await request.body() or b"null")
        except json.JSONDecodeError as exc:
            emu.counters.submits_rejected += 1
            return _error(400, f"Body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            emu.counters.submits_rejected += 1
            return _error(400, "Body must be a JSON object with the model's input fields")
        report = validate_payload(spec, payload)
        rejected = [p for p in report.errors if p.code in SERVER_ENFORCED]
        if rejected:
            emu.counters.submits_rejected += 1
            detail = [{"loc": ["body", p.wire], "msg": p.message, "type": p.code} for p in rejected]
            return JSONResponse({"detail": detail}, status_code=422)
        count = int(payload.get(spec.count_field.wire, spec.count_field.default))
        if count not in COUNT_RANGE:  # pragma: no cover - the enum check already refused it
            return _error(422, "bad count")
        if emu.balance is not None:
            price = spec.price_per_image * count
            if price > emu.balance:
                emu.counters.submits_rejected += 1
                return _error(400, f"Insufficient balance: {emu.balance} left, {price} needed", 400002)
            emu.balance -= price
        job = emu.accept(spec.id, payload, count)
        body = {
            "request_id": job.id,
            **urls(request, job.id),
            "cancel_url": f"{base(request)}/v1/requests/{job.id}/cancel",
        }
        return answer(JSONResponse(body), drop_after)

    async def status(request: Request) -> Response:
        emu.counters.status_calls += 1
        job, instead, drop_after = await open_job(request, "status")
        if job is None:
            return instead
        state = emu.status_of(job)
        body: dict[str, Any] = {"request_id": job.id, "status": state}
        if state == "in_queue":
            body["queue_position"] = emu.queue.position(job)
        body.update(urls(request, job.id))
        return answer(JSONResponse(body), drop_after)

    async def result(request: Request) -> Response:
        emu.counters.result_calls += 1
        job, instead, drop_after = await open_job(request, "result")
        if job is None:
            return instead
        state = emu.status_of(job)
        finished = None
        output = None
        error = None
        if state in ("completed", "failed", "cancelled"):
            end = job.cancelled_at if state == "cancelled" else job.finished
            assert end is not None
            finished = job.created_at + (end - job.submitted)
        if state == "completed":
            output = {"images": emu.image_urls(job, base(request))}
        elif state == "failed":
            error = job.fail_message
        body = {
            "request_id": job.id,
            "status": state,
            "output": output,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(finished),
            "error": error,
        }
        return answer(JSONResponse(body), drop_after)

    async def cancel(request: Request) -> Response:
        emu.counters.cancel_calls += 1
        job, instead, drop_after = await open_job(request, "cancel")
        if job is None:
            return instead
        already = job.cancelled_at is not None
        if emu.queue.cancel(job):
            if not already:
                emu.counters.cancels += 1
            body = {"request_id": job.id, "status": "cancelled", "outcome": "cancelled"}
        else:
            body = {"request_id": job.id, "status": emu.status_of(job), "outcome": "not_cancellable"}
        return answer(JSONResponse(body), drop_after)

    async def file(request: Request) -> Response:
        name = request.path_params["name"]
        where = emu.files.get(name)
        job = emu.queue.jobs.get(where[0]) if where else None
        if where is None or job is None or job.finished is None:
            return _error(404, "No such file")
        if emu.queue.clock() > job.finished + job.image_ttl:
            emu.counters.files_expired += 1
            return _error(404, "This image URL has expired")
        data = await run_in_threadpool(emu.image_bytes, job, where[1], name)
        emu.counters.files_served += 1
        media = "image/png" if name.endswith(".png") else "image/jpeg"
        return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})

    async def counters(request: Request) -> Response:
        snap = emu.counters.snapshot()
        snap["queue_depth"] = emu.queue.depth()
        return JSONResponse(snap)

    async def set_faults(request: Request) -> Response:
        try:
            raw = json.loads(await request.body() or b"{}")
            if "routes" in raw:
                raw["routes"] = tuple(raw["routes"])
            faults = Faults(**raw)
        except (TypeError, ValueError) as exc:
            return _error(400, f"Bad faults: {exc}")
        emu.set_faults(faults)
        return JSONResponse(asdict(faults))

    async def restart(request: Request) -> Response:
        emu.restart()
        return JSONResponse({"restarted": True})

    async def index(request: Request) -> Response:
        return JSONResponse(
            {
                "service": "seqnb emulator of RunComfy's Model API",
                "models": [m.id for m in models()],
                "submit": f"POST {base(request)}/v1/models/{{model_id}}",
            }
        )

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/v1/models/{model_id:path}", submit, methods=["POST"]),
            Route("/v1/requests/{request_id}/status", status, methods=["GET"]),
            Route("/v1/requests/{request_id}/result", result, methods=["GET"]),
            Route("/v1/requests/{request_id}/cancel", cancel, methods=["POST"]),
            Route("/files/{name}", file, methods=["GET"]),
            Route("/_emulator/counters", counters),
            Route("/_emulator/faults", set_faults, methods=["POST"]),
            Route("/_emulator/restart", restart, methods=["POST"]),
        ]
    )
    app.state.emulator = emu
    return app
