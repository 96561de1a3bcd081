"""Helpers for testing code that uses seqnb: the emulator as a context manager or pytest fixture.

from seqnb.testing import emulator

def test_my_sweep():
    with emulator(speed=50) as emu:
        ...  # emu.base_url, emu.token, emu.counters.submits
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .emulator import EmulatorServer, serve

__all__ = ["emulator"]


@contextmanager
def emulator(**overrides: Any) -> Iterator[EmulatorServer]:
    """A fresh emulator on a free loopback port for the duration of the block."""
    server = serve(**overrides)
    try:
        yield server
    finally:
        server.stop()
