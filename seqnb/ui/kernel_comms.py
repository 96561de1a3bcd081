"""Keep widgets answering when they are used while a cell awaits, on the ipykernel versions that need it (7.4).

ipykernel 7.4 handles a widget's message while an ``await`` cell runs (before, it waited for the
cell to end), but it sends no ``status: idle`` for that message. ipywidgets' front end sends a
model's next change only after the idle of its previous one, so the first change made during the
cell was the last: the board's second page click, the prompt typed next, never reached the kernel.
The fix belongs upstream (ipykernel PR #1565, "Allow async cell to process Comm messages", open).

:func:`answer_widget_messages` wraps the kernel's dispatch so that such a message gets its idle,
followed by the running cell's ``busy`` so that JupyterLab still shows the kernel busy. It is
applied only on the ipykernel versions known to lack that idle (``AFFECTED``, checked when
``seqnb.ui`` is imported); ``SEQNB_KERNEL_PATCH=0`` never applies it, ``=1`` applies it on a newer
version too (where the kernel still dispatches comm messages concurrently).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import os
from typing import Any

log = logging.getLogger("seqnb.ui")

_MARK = "_seqnb_answers_widget_messages"

AFFECTED = ((7, 4), (7, 5))
"""ipykernel versions (from, before) that handle comm messages during an awaiting cell without their idle."""
PATCH_ENV = "SEQNB_KERNEL_PATCH"
"""``0``: never patch the kernel; ``1``: patch it outside ``AFFECTED`` too; unset: only inside."""


def _version(text: str) -> tuple[int, int]:
    major, minor, *_ = [int("".join(c for c in p if c.isdigit()) or 0) for p in f"{text}.0.0".split(".")]
    return major, minor


def wanted(version: str | None = None) -> bool:
    """Whether the patch applies to this ipykernel (``version``: the installed one by default) and setting."""
    setting = os.environ.get(PATCH_ENV, "").strip()
    if setting == "0":
        return False
    if setting == "1":
        return True
    if version is None:
        try:
            version = importlib.metadata.version("ipykernel")
        except importlib.metadata.PackageNotFoundError:
            return False
    low, high = AFFECTED
    return low <= _version(version) < high


def _kernel() -> Any:
    from IPython import get_ipython  # comes with ipywidgets

    return getattr(get_ipython(), "kernel", None)


def answer_widget_messages(kernel: Any = None, *, version: str | None = None) -> bool:
    """Make ``kernel`` (the running one by default) answer every widget message with an idle status, where ``wanted``.

    Idempotent; returns whether the kernel was patched (True when it already was)."""
    if not wanted(version):
        return False
    kernel = kernel if kernel is not None else _kernel()
    if kernel is None:
        return False
    if getattr(kernel, _MARK, False):
        return True
    dispatch = getattr(kernel, "dispatch_shell", None)
    publish = getattr(kernel, "_publish_status", None)
    get_parent = getattr(kernel, "get_parent", None)
    if dispatch is None or publish is None or get_parent is None:
        return False
    try:
        concurrent_dispatch = "concurrent" in inspect.signature(dispatch).parameters
    except (TypeError, ValueError):
        return False
    if not concurrent_dispatch:
        return False  # this ipykernel answers widget messages between cells, each with its idle

    async def dispatch_shell(msg: Any, /, subshell_id: str | None = None, *, concurrent: bool = False) -> None:
        running = get_parent("shell") if concurrent else None  # the awaiting cell's request
        try:
            await dispatch(msg, subshell_id=subshell_id, concurrent=concurrent)
        finally:
            if concurrent:
                try:
                    publish("idle", "shell", get_parent("shell"))  # the widget message's own idle
                    if running:
                        publish("busy", "shell", running)  # the cell still runs
                except Exception:  # a status we could not send never breaks the kernel
                    log.debug("could not send a widget message's idle status", exc_info=True)

    kernel.dispatch_shell = dispatch_shell
    setattr(kernel, _MARK, True)
    return True
