"""Test your own code against seqnb's emulator: a context manager, and a pytest plugin with fixtures.

Installed with seqnb, the plugin gives every pytest run three fixtures (the way click ships
``CliRunner``)::

    def test_my_sweep(seqnb_client):
        runs = seqnb_client.sweep(prompts=["Generate 2 images of a fox"], seeds=[1, 2], quiet=True)
        seqnb_client.wait_all(runs, timeout=30)
        assert seqnb_client.ledger.count(status="completed") == 2

- ``seqnb_emulator``: a fresh emulator on a free loopback port (fast pacing; change it with
  ``@pytest.mark.seqnb_emulator(queue_wait=1.0, workers=2, ...)``, the ``EmulatorServer`` options);
- ``seqnb_ledger``: a ``Ledger`` in the test's own temporary directory;
- ``seqnb_client``: ``seqnb.connect`` to that emulator with that ledger and an image cache in
  the temporary directory; closed after the test.

Without pytest: ``with seqnb.testing.emulator(speed=50) as emu: ...`` (``emu.base_url``,
``emu.token``, ``emu.counters.submits``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.sync import Client
    from .emulator import EmulatorServer
    from .ledger.facade import Ledger

__all__ = ["FAST", "emulator", "seqnb_client", "seqnb_emulator", "seqnb_ledger", "serving"]

FAST: dict[str, Any] = {"queue_wait": 0.05, "base_seconds": 0.1, "seconds_per_image": 0.05}
"""The plugin's default pacing: jobs queue 0.05 s and run 0.1 s + 0.05 s per image."""


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Any ASGI app of your own (a stub of another service, a proxy) on a free loopback port; yields its base URL."""
    from .emulator.server import ThreadedApp

    with ThreadedApp(app, name="seqnb-testing-app") as served:
        yield served.base_url


@contextmanager
def emulator(**overrides: Any) -> Iterator[EmulatorServer]:
    """A fresh emulator on a free loopback port for the duration of the block."""
    from .emulator import EmulatorServer

    with EmulatorServer(**overrides) as server:
        yield server


if importlib.util.find_spec("pytest") is not None:  # the plugin; the context manager above works without pytest
    import pytest

    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers",
            "seqnb_emulator(**options): pacing and faults of the seqnb_emulator fixture (EmulatorServer options)",
        )

    @pytest.fixture
    def seqnb_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
        """A fresh, fast emulator of RunComfy's Model API on loopback."""
        marker = request.node.get_closest_marker("seqnb_emulator")
        options = {**FAST, **(marker.kwargs if marker else {})}
        with emulator(**options) as server:
            yield server

    @pytest.fixture
    def seqnb_ledger(tmp_path: Path) -> Iterator[Ledger]:
        """A ledger in the test's temporary directory."""
        from .ledger.facade import Ledger

        ledger = Ledger(tmp_path / "seqnb-ledger.sqlite")
        yield ledger
        ledger.close()

    @pytest.fixture
    def seqnb_client(seqnb_emulator: EmulatorServer, seqnb_ledger: Ledger, tmp_path: Path) -> Iterator[Client]:
        """A client of the ``seqnb_emulator`` fixture, recording to ``seqnb_ledger``, caching images in ``tmp_path``."""
        from .images.cache import ImageCache
        from .session import connect

        client = connect(
            seqnb_emulator.token, seqnb_emulator.base_url, ledger=seqnb_ledger, download=ImageCache(tmp_path / "images")
        )
        yield client
        client.close()
