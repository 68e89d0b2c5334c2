"""Password hashing: argon2id (argon2-cffi), off the event loop.

Hashing costs ~50 ms of CPU and 64 MiB: it runs in a worker thread so other requests go on.
An unknown email is checked against a dummy hash made with the same parameters, so a sign-in
takes as long whether or not the account exists.
"""

from __future__ import annotations

import asyncio

import argon2

from services.dashboard.config import DashboardSettings

# Bounds that keep hashing cheap to refuse: a 1 MB "password" is not one.
MIN_LENGTH = 10
MAX_LENGTH = 128


class Hasher:
    def __init__(self, hasher: argon2.PasswordHasher) -> None:
        self._hasher = hasher
        self._dummy = hasher.hash("clipmix-dummy-password-for-unknown-emails")

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> Hasher:
        return cls(
            argon2.PasswordHasher(
                time_cost=settings.dashboard_argon2_time_cost,
                memory_cost=settings.dashboard_argon2_memory_kib,
                parallelism=settings.dashboard_argon2_parallelism,
                type=argon2.Type.ID,
            )
        )

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; ``None`` (no such person) checks the dummy."""
        return await asyncio.to_thread(self._verify, stored, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            ok = self._hasher.verify(stored or self._dummy, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
