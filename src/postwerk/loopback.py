"""Loopback ports for the throw-away listeners of tests and benchmarks, chosen where no outgoing connection
can take them.

Binding port 0 gives a port from the kernel's ephemeral range (`ip_local_port_range`), the range every
outgoing connection takes its source port from. Between that pick and the listener's own bind (seconds, for
a mail stack that is rendered and started first), any connection on the machine, a test's own to
PostgreSQL or to an SMTP sink among them, may take the port, and Postfix then exits at start ("Address
already in use"). Ports below that range are never source ports, so they are picked from there, checked
free by a bind, and never handed out twice by one process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000  # below: the well-known and registered ports of the machine's own services
MIN_CHOICE = 1_000  # fewer ports than this below the ephemeral range: take one from the kernel instead
ATTEMPTS = 200

_handed_out: set[int] = set()
_lock = threading.Lock()


def _first_ephemeral_port() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _binds(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at `host`, outside the ephemeral range where the machine allows it."""
    first_ephemeral = _first_ephemeral_port()
    with _lock:
        if first_ephemeral - LOWEST >= MIN_CHOICE:
            for _ in range(ATTEMPTS):
                port = random.randrange(LOWEST, first_ephemeral)
                if port not in _handed_out and _binds(host, port):
                    _handed_out.add(port)
                    return port
        with socket.socket() as probe:  # the kernel's choice: what this module avoids where it can
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        _handed_out.add(port)
        return port
