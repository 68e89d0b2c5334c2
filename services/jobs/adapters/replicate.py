"""A Replicate-style predictions API (music, avatars, family videos).

Wire subset: ``POST /v1/predictions`` {version, input, webhook, webhook_events_filter} with
``Authorization: Bearer`` and ``Idempotency-Key`` (our job id: a resubmission after a crash
gets the same prediction back), ``GET /v1/predictions/{id}``, ``POST /v1/predictions/{id}/cancel``.
Predictions go ``starting → processing → succeeded | failed | canceled``; ``output`` is a URL
(or a list of URLs) that expires.

Our models take ``max_duration_seconds``, the length the job's price covers: a talking head
is cut at it however long its ``audio_url`` runs, a faceswap however long its
``target_video_url``, a family video however many photos or how long a soundtrack it has.
"""

from __future__ import annotations

from typing import Any

from services.contracts.jobs import Service
from services.contracts.providers import MODELS, PROVIDER_OF, SERVICE_OF_MODEL
from services.jobs.adapters.provider_http import ProviderHttp
from services.jobs.domain.paid import paid_seconds
from services.jobs.domain.providers import (
    ErrorCode,
    ProviderFailure,
    RemoteArtifact,
    TaskState,
    TaskStatus,
    failed_task,
)

# The file each service's output is stored under (the model and what it makes: the provider
# map, contracts/providers.py).
_FILE_NAME: dict[Service, str] = {
    Service.MUSIC: "music.wav",
    Service.AVATARS: "avatar.mp4",
    Service.FAMILY_VIDEOS: "video.mp4",
}
_STATUS = {
    "starting": TaskStatus.RUNNING,
    "processing": TaskStatus.RUNNING,
    "succeeded": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
    "canceled": TaskStatus.CANCELED,
}


class ReplicatePredictions:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http
        self.name = http.name

    async def submit(
        self, job_id: str, service: Service, input: dict[str, Any], callback_url: str
    ) -> TaskState:
        paid = paid_seconds(service, input)
        body = {
            "version": MODELS[service],
            "input": input if paid is None else {**input, "max_duration_seconds": paid},
            "webhook": callback_url,
            "webhook_events_filter": ["completed"],
        }
        answer = await self._http.call(
            "POST",
            "/v1/predictions",
            json=body,
            headers={"Idempotency-Key": job_id},
            safe_to_repeat=True,  # the idempotency key makes a repeat return the same task
            operation="create",
        )
        return self._state(answer.json())

    async def fetch(self, task_id: str) -> TaskState:
        answer = await self._http.call(
            "GET", f"/v1/predictions/{task_id}", safe_to_repeat=True, operation="get"
        )
        return self._state(answer.json())

    async def cancel(self, task_id: str) -> None:
        await self._http.call(
            "POST", f"/v1/predictions/{task_id}/cancel", safe_to_repeat=True, operation="cancel"
        )

    async def download(self, artifact: RemoteArtifact, max_bytes: int) -> bytes:
        answer = await self._http.call(
            "GET",
            artifact.url,
            safe_to_repeat=True,
            max_bytes=max_bytes,
            operation="download",
            authenticated=False,  # a signed, expiring URL: it needs no key
        )
        return answer.body

    def _state(self, body: dict[str, Any]) -> TaskState:
        status = _STATUS.get(str(body.get("status")))
        task_id = body.get("id")
        if status is None or not isinstance(task_id, str):
            raise ProviderFailure(ErrorCode.PROVIDER_ERROR, "unexpected prediction shape")
        if status is TaskStatus.FAILED:
            return failed_task(task_id, body.get("error"), "prediction failed")
        artifacts: tuple[RemoteArtifact, ...] = ()
        if status is TaskStatus.SUCCEEDED:
            output = body.get("output")
            urls = output if isinstance(output, list) else [output]
            # The model a prediction runs tells us the shape of its output.
            service = SERVICE_OF_MODEL.get(str(body.get("version")), Service.MUSIC)
            name, content_type = _FILE_NAME[service], PROVIDER_OF[service].content_type
            kind = content_type.split("/")[0]
            if not urls or not all(isinstance(u, str) for u in urls):
                raise ProviderFailure(ErrorCode.PROVIDER_ERROR, "succeeded without output")
            artifacts = tuple(
                RemoteArtifact(
                    url=u,
                    name=name if i == 0 else f"{i}-{name}",
                    content_type=content_type,
                    kind=kind,
                )
                for i, u in enumerate(urls)
            )
        return TaskState(task_id, status, artifacts)
