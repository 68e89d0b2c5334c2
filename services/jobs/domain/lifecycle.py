"""The job state machine: queued → processing → completed | failed | canceled. No I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from services.contracts.jobs import CreateJob, JobSnapshot, JobStatus, Service
from services.jobs.domain import languages as langs

_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.CANCELED}),
    JobStatus.PROCESSING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, job_id: str, current: JobStatus, wanted: JobStatus) -> None:
        super().__init__(f"job {job_id}: {current} → {wanted} is not allowed")
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True)
class Job:
    id: str
    account_id: str
    api_key_id: str
    service: Service
    status: JobStatus
    test: bool
    input: dict[str, Any]
    created_at: datetime
    version: int = 1
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress: float = 0.0
    cost_credits: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Translations: each target language's result (domain/languages.py); None otherwise.
    languages: list[dict[str, Any]] | None = None

    @classmethod
    def accept(cls, cmd: CreateJob) -> Job:
        return cls(
            id=cmd.job_id,
            account_id=cmd.account_id,
            api_key_id=cmd.api_key_id,
            service=cmd.service,
            status=JobStatus.QUEUED,
            test=cmd.test,
            input=cmd.input,
            created_at=cmd.created_at,
            cost_credits=cmd.cost_credits,
            languages=langs.start(cmd.input) if cmd.service is Service.TRANSLATIONS else None,
        )

    def can_become(self, status: JobStatus) -> bool:
        return status in _ALLOWED[self.status]

    def transition(self, status: JobStatus, at: datetime, **changes: Any) -> Job:
        """The job after moving to ``status`` at ``at``; raises IllegalTransition."""
        if not self.can_become(status):
            raise IllegalTransition(self.id, self.status, status)
        if status is JobStatus.PROCESSING:
            changes.setdefault("started_at", at)
        else:
            changes.setdefault("completed_at", at)
        if status is JobStatus.COMPLETED:
            changes.setdefault("progress", 1.0)
        if self.languages is not None:
            at_time = changes.get("completed_at") or at
            changes.setdefault(
                "languages",
                langs.follow(
                    self.languages, status, at_time, changes.get("output"), changes.get("error")
                ),
            )
        return replace(self, status=status, version=self.version + 1, **changes)

    def with_languages(self, languages: list[dict[str, Any]]) -> Job:
        """The job with its languages moved on (no status change: a new version all the same,
        so the snapshot that announces a delivered language is newer than the one before)."""
        if self.status is not JobStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status, self.status)
        return replace(
            self,
            languages=languages,
            progress=max(self.progress, langs.progress(languages)),
            version=self.version + 1,
        )

    def snapshot(self) -> JobSnapshot:
        fields = asdict(self)
        return JobSnapshot(job_id=fields.pop("id"), **fields)
