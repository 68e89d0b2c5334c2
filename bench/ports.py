"""Ports for the processes the bench and the tests start, picked so they stay free until used.

A port the kernel picks (``bind(("127.0.0.1", 0))``) comes from its ephemeral range, the same
range every outgoing connection's local port comes from: between picking it and the service
binding it, a connection another process opens (to Postgres, say) can take it, and the service
fails with "address already in use" (seen once in `make bench`). So a port is picked at random
below that range, where the kernel never hands out local ports, and checked free by binding it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Picked from [LOWEST, the ephemeral range's start): above the well-known and most servers' ports.
LOWEST = 20000
_TRIES = 200


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port on 127.0.0.1 nothing is bound to, outside the ephemeral range when it can be."""
    highest = _ephemeral_start() - 1
    if highest > LOWEST:
        for _ in range(_TRIES):
            port = random.randint(LOWEST, highest)
            if _free(port):
                return port
    with socket.socket() as s:  # no room below the range: the kernel's pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
