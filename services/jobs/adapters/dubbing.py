"""An ElevenLabs-style dubbing API (video translations).

Wire subset: ``POST /v1/dubbing`` {name, source_url, source_lang, target_langs, start_time,
end_time, webhook_url} with ``xi-api-key`` and ``Idempotency-Key`` (our job id),
``GET /v1/dubbing/{id}`` (status ``dubbing → dubbed | failed``),
``GET /v1/dubbing/{id}/audio/{language}`` (the dubbed file, authenticated),
``DELETE /v1/dubbing/{id}`` (cancel). Unlike ElevenLabs, one dubbing carries
every target language (ElevenLabs takes one per dubbing): one provider task per job.

The provider dubs the whole source unless told where to stop: ``end_time`` is the length the
job was quoted for, so a source longer than its quote is dubbed only as far as was paid.
"""

from __future__ import annotations

from typing import Any

from services.contracts.jobs import Service
from services.contracts.providers import PROVIDER_OF
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

# What a dubbing makes (the provider map, contracts/providers.py).
_CONTENT_TYPE = PROVIDER_OF[Service.TRANSLATIONS].content_type
_STATUS = {
    "dubbing": TaskStatus.RUNNING,
    "dubbed": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
    "canceled": TaskStatus.CANCELED,
}


class ElevenLabsDubbing:
    def __init__(self, http: ProviderHttp) -> None:
        self._http = http
        self.name = http.name

    async def submit(
        self, job_id: str, service: Service, input: dict[str, Any], callback_url: str
    ) -> TaskState:
        body: dict[str, Any] = {
            "name": job_id,
            "source_url": input.get("video_url"),
            "source_lang": input.get("source_language", "auto"),
            "target_langs": list(input.get("target_languages", [])),
            "watermark": False,
            "webhook_url": callback_url,
        }
        paid = paid_seconds(service, input)
        if paid is not None:
            body.update(start_time=0, end_time=paid)
        answer = await self._http.call(
            "POST",
            "/v1/dubbing",
            json=body,
            headers={"Idempotency-Key": job_id},
            safe_to_repeat=True,
            operation="create",
        )
        created = answer.json()
        dubbing_id = created.get("dubbing_id")
        if not isinstance(dubbing_id, str):
            raise ProviderFailure(ErrorCode.PROVIDER_ERROR, "dubbing created without an id")
        return TaskState(dubbing_id, TaskStatus.RUNNING)

    async def fetch(self, task_id: str) -> TaskState:
        answer = await self._http.call(
            "GET", f"/v1/dubbing/{task_id}", safe_to_repeat=True, operation="get"
        )
        body = answer.json()
        status = _STATUS.get(str(body.get("status")))
        if status is None:
            raise ProviderFailure(ErrorCode.PROVIDER_ERROR, "unexpected dubbing shape")
        if status is TaskStatus.FAILED:
            return failed_task(task_id, body.get("error"), "dubbing failed")
        artifacts: tuple[RemoteArtifact, ...] = ()
        if status is TaskStatus.SUCCEEDED:
            artifacts = tuple(
                RemoteArtifact(
                    url=f"{self._http.base_url}/v1/dubbing/{task_id}/audio/{lang}",
                    name=f"dub-{lang}.mp4",
                    content_type=_CONTENT_TYPE,
                    kind=_CONTENT_TYPE.split("/")[0],
                    language=str(lang),
                )
                for lang in body.get("target_languages", [])
            )
        return TaskState(task_id, status, artifacts)

    async def cancel(self, task_id: str) -> None:
        await self._http.call(
            "DELETE", f"/v1/dubbing/{task_id}", safe_to_repeat=True, operation="cancel"
        )

    async def download(self, artifact: RemoteArtifact, max_bytes: int) -> bytes:
        answer = await self._http.call(
            "GET", artifact.url, safe_to_repeat=True, max_bytes=max_bytes, operation="download"
        )
        return answer.body
