"""``Run``: the synchronous mirror of ``AsyncRun``, the same state (read through) and methods, blocking where it awaits."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..runs.run import AsyncRun, Subscriber

if TYPE_CHECKING:
    from ..ledger.marks import RunMarks
    from .sync import Client

__all__ = ["Run"]


class Run:
    """The synchronous mirror of ``AsyncRun``: the same state (read through) and methods, blocking where it awaits."""

    READ_THROUGH: tuple[str, ...] = (
        "id", "request", "request_id", "status", "queue_position", "error", "model", "requested", "returned",
        "short", "done", "cancellable", "queue_text", "cancel_outcome", "sweep_id", "parent_id", "note", "created_at",
        "submitted_at", "started_at", "finished_at", "server_created_at", "server_finished_at",
    )  # fmt: skip
    """The ``AsyncRun`` attributes a ``Run`` reads through (``images`` is read as a copy)."""

    def __init__(self, core: AsyncRun, client: Client) -> None:
        self.aio = core
        self.client = client

    def __getattr__(self, name: str) -> Any:
        if name in Run.READ_THROUGH:
            return getattr(self.aio, name)
        raise AttributeError(f"'Run' object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *Run.READ_THROUGH})

    @property
    def images(self) -> list[str]:
        return list(self.aio.images)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self.aio.subscribe(callback)

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends; ``Timeout`` after ``timeout`` seconds (the run goes on)."""
        self.client.call(self.aio.wait(timeout))
        return self

    def cancel(self) -> str:
        """Cancel while queued; returns ``cancelled`` or ``not_cancellable`` (already running)."""
        return self.client.call(self.aio.cancel())

    def refresh(self) -> Run:
        self.client.call(self.aio.refresh())
        return self

    def summary(self) -> str:
        return self.aio.summary()

    def rate(self, stars: int, frame: int | None = None) -> None:
        """Rate the series (or one frame, 0-based) 1 to 5 stars; 0 clears. Written to the ledger at once."""
        self.aio.rate(stars, frame)

    def pick(self) -> None:
        """Mark the run picked (``client.promote`` can make it again at full quality)."""
        self.aio.pick()

    def reject(self) -> None:
        """Mark the run rejected."""
        self.aio.reject()

    def tag(self, *tags: str) -> None:
        """Add tags to the run."""
        self.aio.tag(*tags)

    def untag(self, *tags: str) -> None:
        """Remove tags from the run."""
        self.aio.untag(*tags)

    def comment(self, text: str) -> None:
        """Set the run's comment ('' clears it)."""
        self.aio.comment(text)

    @property
    def marks(self) -> RunMarks:
        """This run's marks as they stand, by the current user."""
        return self.aio.marks

    def grid(self, size: int | None = None) -> Any:
        """This series as an ipywidgets grid, from its client's gallery (images come from the local cache)."""
        from ..images.gallery import gallery_of  # Pillow loads only when a grid is asked for

        return gallery_of(self).grid(self, size)

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.summary()}>"
