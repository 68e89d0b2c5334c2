"""Request bodies of the public API: the one definition that validates and documents them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_nul(value: str) -> str:
    # Postgres text cannot hold U+0000; refuse it here rather than fail at the database.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class _Body(BaseModel):
    # Unknown fields are refused and types are not coerced ("60" is not 60): a typo or a
    # wrong type should fail loudly at integration time, not run a job nobody asked for.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MusicCreate(_Body):
    """``POST /api/v1/music``."""

    prompt: Text = Field(min_length=1, max_length=2000, description="What the song is about.")
    lyrics: Text | None = Field(
        None, max_length=10_000, description="Lyrics, optionally with [verse]/[chorus] sections."
    )
    duration_seconds: int = Field(60, ge=5, le=300, description="Length of the song.")
    style: Text | None = Field(None, max_length=200, description="Genre or mood, e.g. 'lo-fi'.")
    vocals: Literal["none", "female", "male", "duet"] | None = Field(
        None, description="Vocal style; 'none' for instrumental."
    )
