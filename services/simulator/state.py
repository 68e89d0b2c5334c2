"""What the simulator remembers: tasks, idempotency keys, counters and the run-time config.
No I/O."""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# ``overrun``: the task ignores the length it was held to (``end_time``, ``max_duration_seconds``)
# and makes its whole natural length, as a provider with a bug would.
FAILURE_KINDS = ("timeout", "unavailable", "rejected", "failed", "stuck", "overrun")


@dataclass
class Config:
    """Changed at run time through ``POST /__admin/config`` (tests) or set by env."""

    latency_seconds: float = 0.5
    latency_jitter_seconds: float = 0.0
    failure_rate: float = 0.0
    failure_kinds: list[str] = field(default_factory=lambda: ["unavailable", "failed"])
    # How long a "timeout" failure holds the request before answering 504.
    hang_seconds: float = 30.0
    # Output URLs stop working after this.
    url_ttl_seconds: float = 3600.0
    # A cancel (of a prediction or a dubbing) is answered this late: a slow provider cancel.
    cancel_delay_seconds: float = 0.0

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if not hasattr(self, name):
                raise ValueError(f"unknown setting {name}")
            if name == "failure_kinds":
                if not isinstance(value, list) or not set(value) <= set(FAILURE_KINDS):
                    raise ValueError(f"failure_kinds must be a subset of {FAILURE_KINDS}")
                setattr(self, name, list(value))
            else:
                setattr(self, name, float(value))

    def public(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Task:
    id: str
    api: str  # "predictions" | "dubbing"
    model: str
    input: dict[str, Any]
    key: str
    webhook: str | None
    created_at: float
    ready_at: float
    outcome: str = "succeeded"  # what it becomes at ready_at: succeeded | failed | stuck
    canceled: bool = False
    seconds: float = 10.0  # the length of what it makes
    # A dubbing's target languages the provider fails (the rest are dubbed): see ``languages``.
    failed_languages: frozenset[str] = frozenset()

    def status(self, now: float) -> str:
        if self.canceled:
            return "canceled"
        if self.outcome == "stuck" or now < self.ready_at:
            return "processing" if now - self.created_at > 0.05 else "starting"
        return self.outcome

    def languages(self, now: float) -> list[tuple[str, str]]:
        """A dubbing's (language, status) pairs. Each target language is ready in turn, the
        n-th of N at ``n/N`` of the task's latency (the last with the whole dubbing), then
        ``succeeded``, or ``failed`` when it is one of ``failed_languages``. A dubbing that
        fails as a whole fails every language at its end; a canceled one cancels them all."""
        langs = [str(lang) for lang in self.input.get("target_langs", [])]
        out = []
        for n, lang in enumerate(langs, start=1):
            ready = self.created_at + (self.ready_at - self.created_at) * n / len(langs)
            if self.canceled:
                state = "canceled"
            elif self.outcome == "stuck" or now < ready:
                state = "processing"
            elif self.outcome == "failed":
                state = "failed" if now >= self.ready_at else "processing"
            else:
                state = "failed" if lang in self.failed_languages else "succeeded"
            out.append((lang, state))
        return out


@dataclass
class State:
    config: Config
    tasks: dict[str, Task] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    creates_by_key: Counter[str] = field(default_factory=Counter)
    tasks_by_key: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    webhooks_sent: int = 0
    cancel_requests: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def roll_failure(self) -> str | None:
        cfg = self.config
        if cfg.failure_rate > 0 and cfg.failure_kinds and self.rng.random() < cfg.failure_rate:
            kind = self.rng.choice(cfg.failure_kinds)
            self.failures[kind] += 1
            return kind
        return None

    def create(
        self,
        api: str,
        model: str,
        input: dict[str, Any],
        key: str,
        webhook: str | None,
        outcome: str,
        seconds: float = 10.0,
        failed_languages: frozenset[str] = frozenset(),
    ) -> Task:
        cfg = self.config
        now = time.monotonic()
        latency = max(0.0, cfg.latency_seconds + self.rng.uniform(0, cfg.latency_jitter_seconds))
        prefix = "p" if api == "predictions" else "dub"
        task = Task(
            id=f"{prefix}{secrets.token_hex(10)}",
            api=api,
            model=model,
            input=input,
            key=key,
            webhook=webhook,
            created_at=now,
            ready_at=now + latency,
            outcome=outcome,
            seconds=seconds,
            failed_languages=failed_languages,
        )
        self.tasks[task.id] = task
        self.by_key[key] = task.id
        self.tasks_by_key[key] += 1
        return task

    def forget(self, task_id: str) -> bool:
        """Lose a task as a provider might: its reads answer 404 and its idempotency key is
        free again. False when there is no such task."""
        task = self.tasks.pop(task_id, None)
        if task is None:
            return False
        if self.by_key.get(task.key) == task_id:
            del self.by_key[task.key]
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "tasks_created": sum(self.tasks_by_key.values()),
            "tasks_by_key": dict(self.tasks_by_key),
            "creates_by_key": dict(self.creates_by_key),
            "failures": dict(self.failures),
            "webhooks_sent": self.webhooks_sent,
            "canceled": sum(1 for t in self.tasks.values() if t.canceled),
            "cancel_requests": self.cancel_requests,
        }

    def reset(self) -> None:
        self.tasks.clear()
        self.by_key.clear()
        self.creates_by_key.clear()
        self.tasks_by_key.clear()
        self.failures.clear()
        self.webhooks_sent = 0
        self.cancel_requests = 0
