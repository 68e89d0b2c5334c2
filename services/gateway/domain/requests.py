"""Request bodies and queries of the public API: the one definition that validates and documents
them (the OpenAPI document is generated from these models). No I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services.contracts.jobs import JobStatus, Service


class FieldError(Exception):
    """A rule that spans fields (or needs the data, not just the type) refused one field."""

    def __init__(self, param: str, message: str, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.code = code


def _no_nul(value: str) -> str:
    # Postgres text cannot hold U+0000; refuse it here rather than fail at the database.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
HttpUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s/?#]+",
        json_schema_extra={"format": "uri"},
    ),
    AfterValidator(_http_url),
]

# ISO 639-1 codes the dubbing providers support. A new language is an additive change.
LanguageCode = Literal[
    "ar", "bg", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fr", "he", "hi", "hr",
    "hu", "id", "it", "ja", "ko", "ms", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sv", "sw",
    "ta", "th", "tl", "tr", "uk", "ur", "vi", "zh",
]  # fmt: skip
LANGUAGES: tuple[str, ...] = get_args(LanguageCode)

JOB_ID_PATTERN = r"^job_[0-9a-z]{26}$"
MAX_TARGET_LANGUAGES = 10
MAX_PHOTOS = 50
MAX_VIDEO_SECONDS = 7200


class _Body(BaseModel):
    # Unknown fields are refused and types are not coerced ("60" is not 60): a typo or a
    # wrong type should fail loudly at integration time, not run a job nobody asked for.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MusicCreate(_Body):
    """``POST /api/v1/music``: a song from a prompt and optional lyrics."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "a lullaby for a rainy day",
                    "lyrics": "[verse]\nRain on the window\n[chorus]\nSleep now",
                    "duration_seconds": 60,
                    "style": "lo-fi",
                    "vocals": "female",
                }
            ]
        }
    )

    prompt: Text = Field(min_length=1, max_length=2000, description="What the song is about.")
    lyrics: Text | None = Field(
        None, max_length=10_000, description="Lyrics, optionally with [verse]/[chorus] sections."
    )
    duration_seconds: int = Field(60, ge=5, le=300, description="Length of the song (default 60).")
    style: Text | None = Field(None, max_length=200, description="Genre or mood, e.g. 'lo-fi'.")
    vocals: Literal["none", "female", "male", "duet"] | None = Field(
        None, description="Vocal style; 'none' for instrumental."
    )


class TranslationCreate(_Body):
    """``POST /api/v1/translations``: dub a video into up to ten languages."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "video_url": "https://cdn.example.com/talk.mp4",
                    "target_languages": ["es", "de"],
                    "tier": "premium",
                    "voice_clone": True,
                    "source_language": "en",
                }
            ]
        }
    )

    video_url: HttpUrl = Field(description="Where to fetch the source video (MP4), http(s).")
    target_languages: list[LanguageCode] = Field(
        min_length=1,
        max_length=MAX_TARGET_LANGUAGES,
        description="ISO 639-1 codes to dub into, each once; one dubbed file per language.",
    )
    tier: Literal["standard", "premium"] = Field(description="Voice quality tier.")
    voice_clone: bool = Field(False, description="Keep the speakers' own voices.")
    source_language: LanguageCode | None = Field(
        None, description="Language spoken in the video; detected when absent."
    )
    duration_seconds: int | None = Field(
        None,
        ge=1,
        le=MAX_VIDEO_SECONDS,
        description="Length of the source video. A live translation is priced by the length"
        " the platform reads from the video's MP4 header; a declared length more than 1 s"
        " away from it is refused (duration_mismatch), and it is used only when the video"
        " cannot be measured (the dubbing then stops there).",
    )

    @model_validator(mode="after")
    def _languages(self) -> TranslationCreate:
        seen: set[str] = set()
        for index, language in enumerate(self.target_languages):
            if language in seen:
                raise FieldError(
                    f"target_languages.{index}", f"'{language}' is listed more than once."
                )
            if language == self.source_language:
                raise FieldError(
                    f"target_languages.{index}",
                    f"'{language}' is the source language; dub into other languages.",
                )
            seen.add(language)
        return self


class FamilyVideoCreate(_Body):
    """``POST /api/v1/family-videos``: a video from photos, optionally set to music."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "photo_urls": [
                        "https://cdn.example.com/p/1.jpg",
                        "https://cdn.example.com/p/2.jpg",
                    ],
                    "mode": "story",
                    "music_job_id": "job_01jd0000000000000000000000",
                    "aspect_ratio": "9:16",
                }
            ]
        }
    )

    photo_urls: list[HttpUrl] = Field(
        min_length=1, max_length=MAX_PHOTOS, description="Photos in the order they appear."
    )
    mode: Literal["moment", "story", "album", "chronicle"] = Field(
        description="moment: one short clip; story: a narrated sequence; album: a slideshow;"
        " chronicle: a long, dated timeline."
    )
    music_job_id: str | None = Field(
        None,
        pattern=JOB_ID_PATTERN,
        description="A music job of the same account (and mode) to use as the soundtrack.",
    )
    music_url: HttpUrl | None = Field(None, description="An audio file to use as the soundtrack.")
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:5"] = Field("16:9", description="Frame shape.")

    @model_validator(mode="after")
    def _one_soundtrack(self) -> FamilyVideoCreate:
        if self.music_job_id is not None and self.music_url is not None:
            raise FieldError("music_url", "Give either music_job_id or music_url, not both.")
        return self


class AvatarCreate(_Body):
    """``POST /api/v1/avatars``: a faceswap or a talking head."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "talking_head",
                    "tier": "balanced",
                    "face_image_url": "https://cdn.example.com/face.jpg",
                    "script": "Welcome to our channel!",
                    "duration_seconds": 30,
                },
                {
                    "kind": "faceswap",
                    "tier": "economy",
                    "face_image_url": "https://cdn.example.com/face.jpg",
                    "target_video_url": "https://cdn.example.com/clip.mp4",
                    "duration_seconds": 15,
                },
            ]
        }
    )

    kind: Literal["faceswap", "talking_head"] = Field(description="What to make.")
    tier: Literal["economy", "balanced", "premium"] = Field(description="Quality tier.")
    face_image_url: HttpUrl = Field(description="A photo of the face to use.")
    duration_seconds: int = Field(ge=1, le=300, description="Length of the result.")
    target_video_url: HttpUrl | None = Field(
        None, description="faceswap only, required: the video whose face is replaced."
    )
    script: Text | None = Field(
        None,
        min_length=1,
        max_length=5000,
        description="talking_head only: what the avatar says (or give audio_url).",
    )
    audio_url: HttpUrl | None = Field(
        None, description="talking_head only: speech to lip-sync to (or give script)."
    )

    @model_validator(mode="after")
    def _per_kind(self) -> AvatarCreate:
        if self.kind == "faceswap":
            if self.target_video_url is None:
                raise FieldError(
                    "target_video_url",
                    "a faceswap needs target_video_url.",
                    "parameter_missing",
                )
            for name in ("script", "audio_url"):
                if getattr(self, name) is not None:
                    raise FieldError(name, f"{name} applies to talking_head only.")
            return self
        if self.target_video_url is not None:
            raise FieldError("target_video_url", "target_video_url applies to faceswap only.")
        if (self.script is None) == (self.audio_url is None):
            raise FieldError(
                "script",
                "A talking_head needs exactly one of script or audio_url.",
                "parameter_missing" if self.script is None else "parameter_invalid",
            )
        return self


# The model that validates each service's create body.
CREATE_MODELS: dict[Service, type[_Body]] = {
    Service.MUSIC: MusicCreate,
    Service.TRANSLATIONS: TranslationCreate,
    Service.FAMILY_VIDEOS: FamilyVideoCreate,
    Service.AVATARS: AvatarCreate,
}


def _rfc3339(value: object) -> object:
    # Lax datetime parsing would read "0.5" as a Unix time; a query time is RFC 3339 text only.
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError("must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


class ListJobsQuery(BaseModel):
    """Query of ``GET /api/v1/jobs``: newest first, cursor-paginated."""

    # Query values arrive as text: numbers and times are parsed, anything unknown is refused.
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(10, ge=1, le=100, description="Page size, 1 to 100 (default 10).")
    starting_after: str | None = Field(
        None,
        pattern=JOB_ID_PATTERN,
        description="A job id from the previous page: the page starts after it.",
    )
    service: Service | None = Field(None, description="Only jobs of this service.")
    status: JobStatus | None = Field(None, description="Only jobs in this status.")
    created_gte: Rfc3339 | None = Field(
        None,
        alias="created[gte]",
        description="Only jobs created at or after this RFC 3339 time (with a zone).",
    )
    created_lte: Rfc3339 | None = Field(
        None,
        alias="created[lte]",
        description="Only jobs created at or before this RFC 3339 time (with a zone).",
    )

    @model_validator(mode="after")
    def _zoned(self) -> ListJobsQuery:
        for name, alias in (("created_gte", "created[gte]"), ("created_lte", "created[lte]")):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise FieldError(alias, f"{alias} needs a time zone, e.g. 2026-01-01T00:00:00Z.")
        return self


def dump(body: BaseModel) -> dict[str, Any]:
    """The job's recorded input: what was sent, with defaults filled in."""
    return body.model_dump(mode="json")
