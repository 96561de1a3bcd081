from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from seqnb.emulator import EmulatorServer
from tests.file_host import FileHost

M40 = "bytedance/seedream-4-0/sequential"
M45 = "bytedance/seedream-4-5/sequential"
E40 = "bytedance/seedream-4-0/edit-sequential"
E45 = "bytedance/seedream-4-5/edit-sequential"


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """seqnb.connect() records to $SEQNB_LEDGER and caches in $SEQNB_CACHE: keep tests out of the user's files."""
    monkeypatch.setenv("SEQNB_LEDGER", str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite"))
    monkeypatch.setenv("SEQNB_CACHE", str(tmp_path_factory.mktemp("cache")))
    # A client that takes a loopback test server for RunComfy reads the balance from the account API:
    # keep that on loopback too (a closed port), never RunComfy's real host.
    monkeypatch.setenv("RUNCOMFY_API_BASE", "http://127.0.0.1:9")


@pytest.fixture(autouse=True)
def _a_kernel_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a kernel of its own: the clients connect() registers (what seqnb.Studio() shows) start empty."""
    import seqnb.session

    monkeypatch.setattr(seqnb.session, "_KERNEL", seqnb.session.KernelSession())


def _numeric(name: str) -> bool:
    """An IPv4 address in any spelling the C library accepts (0x7f.1, 2130706433): resolving it asks no one."""
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches beyond this machine: names other than localhost do not resolve, and only loopback connects."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.strip("[]").split("%")[0])
        except ValueError:
            if name.lower() not in ("localhost", "localhost.localdomain") and not _numeric(name):
                raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no outside name ({name})") from None
        return real_getaddrinfo(host, *args, **kw)

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).strip("[]").split("%")[0]
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                raise ConnectionRefusedError(f"tests connect to loopback only, not {host}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def emu(seqnb_emulator: EmulatorServer) -> EmulatorServer:
    """The seqnb.testing plugin's fast emulator (jobs queue 0.05 s, run 0.1 s + 0.05 s per image)."""
    return seqnb_emulator


@pytest.fixture
def http(emu: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10) as client:
        yield client


@pytest.fixture
def host() -> Iterator[FileHost]:
    """A loopback file host (``tests/file_host.py``), shut down after the test."""
    h = FileHost()
    yield h
    h.close()
