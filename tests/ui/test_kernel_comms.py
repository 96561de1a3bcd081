"""A widget message handled while a cell awaits gets its idle status, and the cell shows busy again.

The kernel here is ipykernel's own shape (``dispatch_shell(msg, subshell_id, *, concurrent)``, a parent per
context, ``_publish_status``); the browser test in tests/system drives the real one in JupyterLab.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
from typing import Any

import pytest

from seqnb.ui.kernel_comms import answer_widget_messages


class Kernel:
    """What ipykernel 7.4 does with a comm message that arrives while a cell holds the shell."""

    def __init__(self) -> None:
        self.parent: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("parent")
        self.parent.set({})
        self.statuses: list[tuple[str, str]] = []
        self.handled: list[str] = []

    def get_parent(self, channel: str = "shell") -> dict[str, Any]:
        return self.parent.get()

    def _publish_status(self, status: str, channel: str, parent: dict[str, Any] | None = None) -> None:
        self.statuses.append((status, (parent or self.get_parent(channel))["msg_id"]))

    async def dispatch_shell(self, msg: Any, /, subshell_id: str | None = None, *, concurrent: bool = False) -> None:
        self.parent.set(msg)
        if not concurrent:
            self._publish_status("busy", "shell")
        self.handled.append(msg["msg_id"])
        if msg["msg_id"] == "broken":
            raise RuntimeError("the handler failed")
        if not concurrent:
            self._publish_status("idle", "shell")

    async def cell_receives(self, comm: str) -> None:
        """A cell runs (its request is the parent) and a comm message is dispatched beside it."""
        self.parent.set({"msg_id": "cell"})
        task = asyncio.create_task(
            self.dispatch_shell({"msg_id": comm}, concurrent=True), context=contextvars.copy_context()
        )
        with contextlib.suppress(RuntimeError):  # the handler's own failure is the kernel's to log
            await task


def test_a_widget_message_during_an_awaiting_cell_gets_its_idle_then_the_cell_is_busy_again() -> None:
    kernel = Kernel()
    assert answer_widget_messages(kernel) is True
    asyncio.run(kernel.cell_receives("page-1"))
    asyncio.run(kernel.cell_receives("page-0"))
    assert kernel.handled == ["page-1", "page-0"]
    assert kernel.statuses == [("idle", "page-1"), ("busy", "cell"), ("idle", "page-0"), ("busy", "cell")]


def test_a_failing_handler_still_gets_its_idle() -> None:
    kernel = Kernel()
    answer_widget_messages(kernel)
    asyncio.run(kernel.cell_receives("broken"))
    assert kernel.statuses == [("idle", "broken"), ("busy", "cell")]


def test_messages_between_cells_keep_the_kernels_own_statuses_and_installing_twice_wraps_once() -> None:
    kernel = Kernel()
    assert answer_widget_messages(kernel) and answer_widget_messages(kernel)
    asyncio.run(kernel.dispatch_shell({"msg_id": "between"}))
    assert kernel.statuses == [("busy", "between"), ("idle", "between")]


def test_a_kernel_that_answers_comms_only_between_cells_is_left_alone() -> None:
    class Older(Kernel):
        async def dispatch_shell(self, msg: Any, /, subshell_id: str | None = None) -> None:  # type: ignore[override]
            await super().dispatch_shell(msg)

    kernel = Older()
    original = kernel.dispatch_shell
    assert answer_widget_messages(kernel) is False
    assert kernel.dispatch_shell == original
    assert answer_widget_messages(None) is False  # no IPython kernel here


def test_the_installed_ipykernel_has_the_shape_the_wrapper_relies_on() -> None:
    kernelbase = pytest.importorskip("ipykernel.kernelbase")
    kernel_class = kernelbase.Kernel
    parameters = inspect.signature(kernel_class.dispatch_shell).parameters
    if "concurrent" not in parameters:
        pytest.skip("this ipykernel answers widget messages only between cells")
    assert parameters["concurrent"].kind is inspect.Parameter.KEYWORD_ONLY
    assert callable(kernel_class._publish_status) and callable(kernel_class.get_parent)


@pytest.mark.parametrize(
    ("version", "setting", "patched"),
    [
        ("7.4.0", None, True),  # the release that dispatches comm messages concurrently without their idle
        ("7.4.3", None, True),
        ("7.3.0", None, False),  # answers widget messages only between cells, each with its idle
        ("6.29.5", None, False),
        ("7.5.0", None, False),  # newer than known: left alone unless asked
        ("8.1.0", "1", True),
        ("7.4.0", "0", False),  # turned off
    ],
)
def test_the_patch_applies_only_to_the_affected_versions_or_as_set(
    version: str, setting: str | None, patched: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if setting is None:
        monkeypatch.delenv("SEQNB_KERNEL_PATCH", raising=False)
    else:
        monkeypatch.setenv("SEQNB_KERNEL_PATCH", setting)
    kernel = Kernel()
    original = kernel.dispatch_shell
    assert answer_widget_messages(kernel, version=version) is patched
    assert (kernel.dispatch_shell != original) is patched
    asyncio.run(kernel.cell_receives("page-1"))
    assert (("idle", "page-1") in kernel.statuses) is patched
