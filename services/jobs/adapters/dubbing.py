"""An ElevenLabs-style dubbing API (video translations).

Wire subset: ``POST /v1/dubbing`` {name, source_url, source_lang, target_langs, start_time,
end_time, webhook_url} with ``xi-api-key`` and ``Idempotency-Key`` (our job id),
``GET /v1/dubbing/{id}`` (status ``dubbing → dubbed | failed``; our provider also reports each
language under ``languages``: ``[{language, status, error}]``, the same statuses),
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
    LanguageState,
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
        languages = self._languages(task_id, body.get("languages"))
        if status is TaskStatus.FAILED:
            failed = failed_task(task_id, body.get("error"), "dubbing failed")
            return TaskState(task_id, status, failure=failed.failure, languages=languages)
        artifacts: tuple[RemoteArtifact, ...] = ()
        if status is TaskStatus.SUCCEEDED:
            done = {s.language for s in languages if s.status is not TaskStatus.SUCCEEDED}
            artifacts = tuple(
                self._artifact(task_id, str(lang))
                for lang in body.get("target_languages", [])
                if str(lang) not in done
            )
        return TaskState(task_id, status, artifacts, languages=languages)

    def _artifact(self, task_id: str, lang: str) -> RemoteArtifact:
        return RemoteArtifact(
            url=f"{self._http.base_url}/v1/dubbing/{task_id}/audio/{lang}",
            name=f"dub-{lang}.mp4",
            content_type=_CONTENT_TYPE,
            kind=_CONTENT_TYPE.split("/")[0],
            language=lang,
        )

    def _languages(self, task_id: str, reported: object) -> tuple[LanguageState, ...]:
        """Each language's state, when the provider reports them (else empty)."""
        if not isinstance(reported, list):
            return ()
        states = []
        for entry in reported:
            if not isinstance(entry, dict) or not isinstance(entry.get("language"), str):
                raise ProviderFailure(ErrorCode.PROVIDER_ERROR, "unexpected dubbing shape")
            lang = entry["language"]
            status = _STATUS.get(str(entry.get("status")))
            if status is None:
                raise ProviderFailure(ErrorCode.PROVIDER_ERROR, "unexpected dubbing shape")
            if status is TaskStatus.SUCCEEDED:
                states.append(LanguageState(lang, status, artifact=self._artifact(task_id, lang)))
            elif status is TaskStatus.FAILED:
                failure = failed_task(task_id, entry.get("error"), "dubbing failed").failure
                states.append(LanguageState(lang, status, failure=failure))
            else:
                states.append(LanguageState(lang, status))
        return tuple(states)

    async def cancel(self, task_id: str) -> None:
        await self._http.call(
            "DELETE", f"/v1/dubbing/{task_id}", safe_to_repeat=True, operation="cancel"
        )

    async def download(self, artifact: RemoteArtifact, max_bytes: int) -> bytes:
        answer = await self._http.call(
            "GET", artifact.url, safe_to_repeat=True, max_bytes=max_bytes, operation="download"
        )
        return answer.body
