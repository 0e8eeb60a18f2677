"""Whether a host is loopback: one rule for the services (a bind address) and trade-ops
(doctor's posture, bench's targets). No imports beyond the standard library."""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["addresses", "is_loopback"]


def addresses(host: str) -> list[str]:
    """The addresses `host` resolves to (an address is itself); raises OSError (socket.gaierror)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


def is_loopback(host: str) -> bool:
    """Whether every address `host` is or resolves to is loopback (127.0.0.0/8, ::1;
    localhost as the machine resolves it). 0.0.0.0 is not: it is every interface; a name
    that does not resolve is not either."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = addresses(host)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a).is_loopback for a in found)
