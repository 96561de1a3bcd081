"""The emulated service's memory: its queue, image files, uploads, account, counters and faults; no HTTP here.

References come inline, as RunComfy's own tools send them (data URIs); RunComfy's Model API has no
known upload route, and the emulator's ``POST /files`` also keeps an image and answers the URL
serving it. The emulator reads references only from those two (``references``): it fetches no
URL at all.
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ..model.spec import get_model, size_dimensions
from .config import EmulatorConfig
from .faults import FaultDice, Faults, Route
from .images import Colour, dominant_colour, render
from .queue import Job, JobQueue
from .references import decoded

__all__ = ["MAX_UPLOAD_BYTES", "UNLIMITED_BALANCE", "Account", "Counters", "EmulatorState", "Uploads"]

UNLIMITED_BALANCE = Decimal("1000000")
"""What the balance route counts down from when the emulator has no balance set (submits are never refused)."""


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
    catalog_calls: int = 0
    balance_calls: int = 0
    too_large: int = 0
    """Request bodies refused for their size (413)."""
    faults: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {**vars(self), "faults": dict(self.faults)}


class Account:
    """The wallet: runs are charged (price x requested count) when they complete; cancelled ones cost nothing,
    failed ones ``failed_share`` of their price (``EmulatorConfig.failed_cost_share``, 0 by default).

    A run's fate is fixed when it is accepted (faults are drawn then), so charges are settled lazily
    from each pending run's schedule, whenever the balance is asked for.
    """

    def __init__(self, start: Decimal | None, failed_share: Decimal = Decimal(0)) -> None:
        self.limited = start is not None
        self.failed_share = failed_share
        self.start = start if start is not None else UNLIMITED_BALANCE
        self.spent = Decimal(0)
        self._pending: list[Job] = []

    def settle(self, now: float) -> None:
        """Charge every pending run that has completed by ``now``; drop the ones that ended otherwise."""
        still = []
        for job in self._pending:
            state = job.state(now)
            if state in ("in_queue", "in_progress"):
                still.append(job)
            else:
                self.spent += self.charge(job, state)
        self._pending = still

    def charge(self, job: Job, state: str) -> Decimal:
        """What a job that ended in ``state`` is charged: its price if completed, a share of it if failed, else 0."""
        if state == "completed":
            return job.cost
        return job.cost * self.failed_share if state == "failed" else Decimal(0)

    def balance(self, now: float) -> Decimal:
        self.settle(now)
        return self.start - self.spent

    def available(self, now: float) -> Decimal:
        """What a new submit may still commit: the balance less the runs not yet ended."""
        self.settle(now)
        return self.start - self.spent - sum((job.cost for job in self._pending), Decimal(0))

    def commit(self, job: Job) -> None:
        self._pending.append(job)

    def forget_unfinished(self, now: float) -> None:
        """A restart loses the runs that had not finished: they are never charged."""
        self.settle(now)
        self._pending.clear()


MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""The largest file ``POST /files`` takes (the pages' 50 MB for an input image)."""

_KEEP = 64
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


class Uploads:
    """The uploaded files, by name (the most recent ``_KEEP``), and what a reference URL holds."""

    def __init__(self) -> None:
        self._files: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes, media: str) -> str:
        """Keep a file; returns its name under ``/files/``."""
        name = "up-" + secrets.token_urlsafe(12) + _EXTENSIONS.get(media, ".bin")
        with self._lock:
            self._files[name] = (data, media)
            while len(self._files) > _KEEP:
                self._files.popitem(last=False)
        return name

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._files.get(name)

    def __len__(self) -> int:
        """How many uploaded files are kept."""
        with self._lock:
            return len(self._files)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def read(self, reference: str) -> bytes | None:
        """The bytes of a reference the emulator holds: an inline image, or one of the uploaded files (named by its
        ``/files/`` path); else None (any other URL is never fetched)."""
        if reference.startswith("data:"):
            return decoded(reference)
        path = urlsplit(reference).path
        if not path.startswith("/files/"):
            return None
        own = self.get(path.rsplit("/", 1)[-1])
        return own[0] if own is not None else None


_rendered = functools.lru_cache(maxsize=48)(render)
"""The frames served last (a frame is a pure function of its arguments: the same series asked twice renders once)."""


class EmulatorState:
    """The service's memory: queue, image files, account, counters, faults; ``clock`` drives the queue and expiry."""

    def __init__(self, config: EmulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or EmulatorConfig()
        self.queue = JobQueue(self.config.queue, clock)
        self.counters = Counters()
        self.dice = FaultDice(self.config.faults)
        self.route_dice: dict[str, FaultDice] = {}
        self.account = Account(self.config.balance, self.config.failed_cost_share)
        self.files: dict[str, tuple[str, int]] = {}
        self.uploads = Uploads()
        """Files users uploaded (``POST /files``): local reference images."""
        self._tints: dict[str, Colour | None] = {}

    @property
    def faults(self) -> Faults:
        return self.dice.faults

    def set_faults(self, faults: Faults, route: Route | None = None) -> None:
        """Switch fault injection at run time, for every call or for one route (``submit``...)."""
        if route is None:
            self.dice = FaultDice(faults)
            self.route_dice.clear()
        else:
            self.route_dice[route] = FaultDice(faults)

    def restart(self) -> None:
        """Forget every job and file, as a restarted server would."""
        self.account.forget_unfinished(self.queue.advance())
        for request_id in list(self.queue.jobs):
            self.queue.forget(request_id)
        self.files.clear()
        self.uploads.clear()
        self._tints.clear()

    # --- jobs --------------------------------------------------------------------------------

    def status_of(self, job: Job) -> str:
        return job.state(self.queue.advance())

    def overdraws(self, model: str, count: int) -> Decimal | None:
        """The price of this submit if it would overdraw a set balance, else None."""
        if not self.account.limited:
            return None
        price = self.config.price(model) * count
        return price if price > self.account.available(self.queue.advance()) else None

    def accept(self, model: str, payload: dict[str, Any], count: int) -> Job:
        """Queue a job, deciding now (deterministically) what will go wrong with it, and commit its price."""
        job = self.queue.submit(model, payload, count)
        job.cost = self.config.price(model) * count
        planned = self.dice.for_job(job.seq, count)
        if planned.fail:
            job.fail_message = "Generation failed upstream (emulated failure)"
        job.returned = planned.returned if planned.returned is not None else count
        job.image_ttl = 0.0 if planned.expire else self.config.image_ttl
        self.account.commit(job)
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

    def tint(self, job: Job) -> Colour | None:
        """The dominant colour of a job's references (read once per job), or None without any."""
        if job.id not in self._tints:
            refs = get_model(job.model).references_field
            urls = job.payload.get(refs.wire) if refs else None
            found = [self.uploads.read(str(u)) for u in urls] if isinstance(urls, list) else []
            self._tints[job.id] = dominant_colour([d for d in found if d is not None])
        return self._tints[job.id]

    def image_bytes(self, job: Job, index: int) -> bytes:
        spec = get_model(job.model)
        prompt = str(job.payload.get(spec.prompt_field.wire, ""))
        size = job.payload.get(spec.size_field.wire) if spec.size_field else None
        size = size or spec.default("size") or "2048x2048"
        seed = job.payload.get("seed", spec.default("seed"))
        width, height = size_dimensions(str(size), prompt)
        tint = self.tint(job)
        return _rendered(job.model, prompt, seed, width, height, index, job.count, self.config.image_format, tint)
