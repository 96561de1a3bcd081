"""What kind of network address a host name is (no I/O: names are not resolved here)."""

from __future__ import annotations

import ipaddress

__all__ = ["is_local_address", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP (127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local_address(host: str) -> bool:
    """Loopback, private or link-local: a server on this machine or this network (a tunnel, a local proxy)."""
    if is_loopback(host):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower().endswith((".local", ".localhost"))
    return address.is_private or address.is_link_local
