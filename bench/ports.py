"""Ports for the processes the bench and the tests start, picked so they stay free until used.

A port the kernel picks (``bind(("127.0.0.1", 0))``) comes from its ephemeral range, the same
range every outgoing connection's local port comes from: between picking it and the service
binding it, a connection another process opens (to Postgres, say) can take it, and the service
fails with "address already in use" (seen once in `make bench`). So a port is picked at random
below that range, where the kernel never hands out local ports, and checked free by binding it.

Two picks made before either port is bound could still meet (a harness picks every port of a
suite, then starts it): a process never hands out the same port twice, and each pytest-xdist
worker picks from a slice of the range of its own, so two test processes never meet either
(seen once in CI: an edge's port was a service's).
"""

from __future__ import annotations

import os
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


_given: set[int] = set()  # every port this process has handed out


def _slice(lowest: int, highest: int) -> tuple[int, int]:
    """This pytest-xdist worker's share of [lowest, highest] (all of it outside xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        index = int(worker.removeprefix("gw"))
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        return lowest, highest
    if not 0 <= index < count:
        return lowest, highest
    width = (highest - lowest + 1) // count
    start = lowest + index * width
    return start, start + width - 1


def free_port() -> int:
    """A port on 127.0.0.1 nothing is bound to and this process has not handed out before,
    outside the ephemeral range when it can be."""
    highest = _ephemeral_start() - 1
    if highest > LOWEST:
        low, high = _slice(LOWEST, highest)
        for _ in range(_TRIES):
            port = random.randint(low, high)
            if port not in _given and _free(port):
                _given.add(port)
                return port
    with socket.socket() as s:  # no room below the range: the kernel's pick
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _given.add(port)
    return port
