"""How billing reads the jobs service's answers about a reservation's job (no I/O)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.billing.adapters.jobs import HttpJobDirectory, Unreadable
from services.contracts.jobs import JobStatus
from services.runtime.internal import InternalClient, Reply, Unavailable


class _Answers:
    """Stands in for ``InternalClient``: answers every call with one canned reply."""

    def __init__(self, status: int, body: Any) -> None:
        self.reply = Reply(status, orjson.dumps(body), "application/json")
        self.paths: list[str] = []

    async def call(self, method: str, path: str, **_: Any) -> Reply:
        self.paths.append(path)
        return self.reply


def _directory(answers: _Answers) -> HttpJobDirectory:
    client: InternalClient = answers  # type: ignore[assignment]
    return HttpJobDirectory(client)


async def test_a_known_job_answers_its_status() -> None:
    answers = _Answers(200, {"job_id": "job_1", "status": "processing", "extra": "ignored"})
    assert await _directory(answers).status("job_1") is JobStatus.PROCESSING
    assert answers.paths == ["/internal/v1/jobs/job_1"]


async def test_job_not_found_means_the_job_never_existed() -> None:
    answers = _Answers(404, {"error": {"code": "job_not_found", "message": "No such job."}})
    assert await _directory(answers).status("job_1") is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"error": {"code": "route_not_found"}}),  # wrong token or no such route
        (404, "not json at all"),
        (503, {"error": {"code": "internal_error"}}),
    ],
)
async def test_doubtful_answers_release_nothing(status: int, body: Any) -> None:
    with pytest.raises(Unavailable):
        await _directory(_Answers(status, body)).status("job_1")


async def test_an_unreadable_snapshot_skips_the_job() -> None:
    with pytest.raises(Unreadable):
        await _directory(_Answers(200, {"state": "weird"})).status("job_1")
