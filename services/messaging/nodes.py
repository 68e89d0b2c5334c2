"""RabbitMQ as a list of nodes (a cluster): connect to one, reconnect to the next that answers.

aio-pika's ``RobustConnection`` reconnects to its one URL. ``NodesConnection`` keeps the list
and moves on to the next node after every failed attempt and every lost connection: both end
in ``_on_connection_close`` (aio-pika calls it for an attempt that fails as well), which is
where the URL of the next attempt is chosen. Everything else is aio-pika's own: after a
reconnect the robust channels open again, declare their exchanges and queues, set their QoS and
consume again, on whichever node answered. The URLs carry passwords: logs name nodes by
``host:port`` only.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from aio_pika import RobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

log = structlog.get_logger()

SCHEMES = ("amqp", "amqps")
_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}

# Pause between two attempts. The next attempt goes to the next node, so a dead node costs one
# pause; aio-pika's own default (5 s) is for a single broker restarting.
RECONNECT_INTERVAL_SECONDS = 1.0


def split_nodes(value: str) -> tuple[str, ...]:
    """The node URLs of ``value``: one URL or a comma-separated list (spaces around commas ok).

    Raises ValueError naming the node (by position and ``host:port``), never its URL.
    """
    urls = tuple(part.strip() for part in value.split(","))
    seen: set[str] = set()
    for n, url in enumerate(urls, 1):
        where = f"node {n} of {len(urls)}"
        if not url:
            raise ValueError(f"{where} is empty")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"{where} is not a URL (a bad port?)") from None
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError(f"{where} is not an amqp://host or amqps://host URL")
        node = node_of(url)
        if node in seen:
            raise ValueError(f"{where} ({node}) is listed twice")
        seen.add(node)
    return urls


def node_of(url: str | URL) -> str:
    """``host:port`` of a node URL: how logs and errors name a node (no credentials)."""
    parsed = URL(url)
    return f"{parsed.host}:{parsed.explicit_port or _DEFAULT_PORTS.get(parsed.scheme)}"


class NodesConnection(RobustConnection):
    """A robust connection to whichever of ``urls`` answers, starting with ``urls[start]``.

    A failed attempt or a lost connection moves on to the next node in the list (round and
    round), ``reconnect_interval`` seconds apart; each attempt is bounded by the ``timeout``
    given to ``connect`` (the module's ``connect`` passes its ``attempt_seconds``). ``node``
    is the one in use, or the one tried next.
    """

    def __init__(self, urls: Sequence[str], *, start: int = 0, **kwargs: Any) -> None:
        if not urls:
            raise ValueError("no RabbitMQ node given")
        self._urls = tuple(URL(url) for url in urls)
        self._at = start % len(self._urls)
        super().__init__(self._urls[self._at], **kwargs)

    @property
    def node(self) -> str:
        return node_of(self._urls[self._at])

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if not self.close_called:
            # A lost connection, or a failed attempt (``connect`` reports the first round's).
            lost = self.connected.is_set()
            _let_go(self)
            failed = self.node
            self._at = (self._at + 1) % len(self._urls)
            self.url = self._urls[self._at]
            if lost or self.connection_attempt:
                log.warning(
                    "amqp_connection_lost" if lost else "amqp_connect_failed",
                    node=failed,
                    next_node=self.node,
                    error=_error_of(closing),
                )
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        log.info("amqp_connected", node=self.node, attempt=self.connection_attempt)


def _let_go(connection: RobustConnection) -> None:
    """Forget a lost transport at once, so that no channel starts reopening on it.

    Each robust channel reopens itself when its channel closes, under a lock, on
    ``connection.transport``; the reconnect after a lost connection restores every channel
    again, under the same lock. On the dead transport that first reopen fails, unless the
    transport was blocked (``connection.blocked``: a memory or disk alarm, the likeliest state
    of a node about to be OOM-killed): aiormq's ``ready()`` then waits for an unblock that never
    comes, the lock is never released and the channel (the outbox relay's, a consumer's) stays
    closed on the new node. Seen in tests/integration/test_rabbit_cluster.py. With no
    transport the reopen fails at once and the reconnect restores the channel; the dead
    connection's unblock is set for a reopen that had already started.
    """
    transport, connection.transport = connection.transport, None
    if transport is None:
        return
    # aiormq has no public way to release ready() on a closed connection.
    unblocked = getattr(transport.connection, "_Connection__connection_unblocked", None)
    if isinstance(unblocked, asyncio.Event):
        unblocked.set()


def _error_of(closing: asyncio.Future[Any]) -> str:
    if closing.cancelled():
        return "cancelled"
    exc = closing.exception()
    return type(exc).__name__ if exc is not None else "closed"


async def connect(
    urls: Sequence[str],
    *,
    name: str,
    attempt_seconds: float,
    start: int | None = None,
    reconnect_interval: float = RECONNECT_INTERVAL_SECONDS,
) -> NodesConnection:
    """Connect to the first node of ``urls`` that answers within ``attempt_seconds``, trying
    each once from ``start`` (random by default, so the replicas of a service spread over the
    cluster).

    ``name`` is the connection's name on the broker. Raises ConnectionError when no node
    answers (a process should not start then); once connected, the connection keeps trying
    every node by itself.
    """
    first = random.randrange(len(urls)) if start is None else start
    for i in range(len(urls)):
        at = (first + i) % len(urls)
        connection = NodesConnection(
            urls,
            start=at,
            reconnect_interval=reconnect_interval,
            client_properties={"connection_name": name},
        )
        try:
            await connection.connect(timeout=attempt_seconds)
        except CONNECTION_EXCEPTIONS as exc:
            await connection.close()
            log.warning("amqp_node_unreachable", node=node_of(urls[at]), error=type(exc).__name__)
            continue
        return connection
    raise ConnectionError(f"no RabbitMQ node answered: {', '.join(node_of(url) for url in urls)}")
