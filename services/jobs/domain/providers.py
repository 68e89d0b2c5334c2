"""Ports to the providers and what they answer, in our terms. No I/O.

Each service kind has an adapter implementing :class:`Provider`; the runner only speaks these
types, so a provider's wire format and error vocabulary stay inside its adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from services.contracts.jobs import Service


class ErrorCode(StrEnum):
    """The ``error.code`` of a failed job (SPEC: job events)."""

    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_REJECTED_INPUT = "provider_rejected_input"
    PROVIDER_ERROR = "provider_error"
    ARTIFACT_UNAVAILABLE = "artifact_unavailable"


MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.PROVIDER_TIMEOUT: "The provider did not finish the job in time.",
    ErrorCode.PROVIDER_UNAVAILABLE: "The provider could not be reached.",
    ErrorCode.PROVIDER_REJECTED_INPUT: "The provider rejected the input.",
    ErrorCode.PROVIDER_ERROR: "The provider failed to produce the result.",
    ErrorCode.ARTIFACT_UNAVAILABLE: "The result could not be fetched from the provider or stored.",
}


class ProviderFailure(Exception):
    """A provider call that did not succeed; ``retryable`` when trying again may help."""

    def __init__(self, code: ErrorCode, detail: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.retryable = retryable

    def error(self) -> dict[str, str]:
        """The job's public ``error``: our code and message, never the provider's raw text."""
        return {"code": self.code.value, "message": MESSAGES[self.code]}


class NotFoundAtProvider(ProviderFailure):
    """The provider does not know what we asked about (HTTP 404/410): on a task read, the
    provider lost a task we submitted."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.ARTIFACT_UNAVAILABLE, detail)


class TaskStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class RemoteArtifact:
    """A result file at the provider: ``name`` is the file name we store it under."""

    url: str
    name: str
    content_type: str
    kind: str  # "audio" | "video"
    language: str | None = None


@dataclass(frozen=True)
class LanguageState:
    """What the provider says about one target language of a dubbing: ``artifact`` when it
    succeeded, ``failure`` when it failed."""

    language: str
    status: TaskStatus
    artifact: RemoteArtifact | None = None
    failure: ProviderFailure | None = None


@dataclass(frozen=True)
class TaskState:
    task_id: str
    status: TaskStatus
    artifacts: tuple[RemoteArtifact, ...] = ()
    failure: ProviderFailure | None = None
    # A dubbing whose provider reports each language (empty: it does not; the task's status
    # and artifacts then stand for every language).
    languages: tuple[LanguageState, ...] = ()


class Provider(Protocol):
    """One provider API, as the runner needs it. Every call has a deadline and may raise
    :class:`ProviderFailure`; ``submit`` with the same ``job_id`` never starts a second task."""

    name: str

    async def submit(
        self, job_id: str, service: Service, input: dict[str, Any], callback_url: str
    ) -> TaskState: ...

    async def fetch(self, task_id: str) -> TaskState: ...

    async def cancel(self, task_id: str) -> None: ...

    async def download(self, artifact: RemoteArtifact, max_bytes: int) -> bytes: ...


def failed_task(task_id: str, error: object, fallback: str) -> TaskState:
    """A task the provider reports as failed. Both provider APIs say "invalid input…" when the
    customer's input was refused (our ``provider_rejected_input``); anything else is theirs."""
    detail = str(error or fallback)
    code = (
        ErrorCode.PROVIDER_REJECTED_INPUT
        if detail.lower().startswith("invalid input")
        else ErrorCode.PROVIDER_ERROR
    )
    return TaskState(task_id, TaskStatus.FAILED, failure=ProviderFailure(code, detail))
