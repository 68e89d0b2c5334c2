"""Held event reads (``GET /api/v1/events?wait=N``) sleep until their key has news.

One LISTEN per process (channel ``webhooks_events``; the consumer notifies the key id in the
transaction that stores the event) wakes the readers of that key; no held read polls the
database on its own. A notification only says "an event of this key committed": the stream may
hand it out a moment later (it waits for older transactions to end, see ``adapters.events``),
so a woken reader looks a few times, briefly, before it sleeps again. A slow safety tick wakes
everyone, for a notification missed while the LISTEN connection was being re-opened.

Held reads are bounded per key and per process: past either, the read is refused at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

# The channel the consumer notifies with the key id of each stored event.
EVENTS_CHANNEL = "webhooks_events"


class TooManyHeld(Exception):
    """The key already holds as many event reads here as it may."""


class Overloaded(Exception):
    """The process holds as many event reads as it may, from all keys together."""


class Subscription:
    """A held read's doorbell: ``clear()`` before looking, ``wait()`` after finding nothing."""

    def __init__(self, woken: asyncio.Event) -> None:
        self._woken = woken

    def clear(self) -> None:
        self._woken.clear()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True when woken (perhaps while the reader was looking), False at ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                await self._woken.wait()
        except TimeoutError:
            return False
        return True


class EventWaker:
    def __init__(self, *, per_key: int, total: int, safety_seconds: float) -> None:
        self._per_key = per_key
        self._total = total
        self._safety = safety_seconds
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._held: dict[str, int] = {}

    @property
    def held(self) -> int:
        return sum(self._held.values())

    @contextlib.contextmanager
    def hold(self, api_key_id: str) -> Iterator[Subscription]:
        """One held read of ``api_key_id``, subscribed to its key's wakes from now on (a wake
        that comes while the reader is looking is kept, not lost); raises TooManyHeld or
        Overloaded past the caps."""
        if self._held.get(api_key_id, 0) >= self._per_key:
            raise TooManyHeld(api_key_id)
        if self.held >= self._total:
            raise Overloaded()
        self._held[api_key_id] = self._held.get(api_key_id, 0) + 1
        woken = asyncio.Event()
        self._waiting.setdefault(api_key_id, set()).add(woken)
        try:
            yield Subscription(woken)
        finally:
            self._held[api_key_id] -= 1
            if not self._held[api_key_id]:
                del self._held[api_key_id]
            waiters = self._waiting.get(api_key_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiting[api_key_id]

    def wake(self, *args: Any) -> None:
        """asyncpg's listener callback ``(connection, pid, channel, payload)``: wakes the readers
        of the key in ``payload``; called without one (a re-opened LISTEN), wakes everyone."""
        key = args[3] if len(args) >= 4 else None
        if key is None:
            self.wake_all()
            return
        for woken in self._waiting.get(str(key), ()):
            woken.set()

    def wake_all(self) -> None:
        for waiters in self._waiting.values():
            for woken in waiters:
                woken.set()

    async def run(self) -> None:
        """The safety tick, until cancelled."""
        while True:
            await asyncio.sleep(self._safety)
            self.wake_all()

    async def stop(self, grace_seconds: float) -> None:
        """Shutting down: held reads answer what they have now."""
        self.wake_all()
