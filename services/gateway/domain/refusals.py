"""Why the gateway refuses a create, as plain exceptions. No I/O, no HTTP: the entrypoints map
each kind to its public error (``entrypoints/refusals.py``), as the jobs service's cancel does."""

from __future__ import annotations


class Refusal(Exception):
    """A create refused by the gateway's own rules."""


class CreatesBacklogged(Refusal):
    """Too many creates are waiting for their commit already: nothing was done, retry soon."""


class MusicJobMissing(Refusal):
    """``music_job_id`` names no job of the caller's account and mode."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class MusicJobNotMusic(Refusal):
    def __init__(self, job_id: str, service: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
        self.service = service


class MusicJobUnusable(Refusal):
    """The music job failed or was canceled: it has no song."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
        self.status = status


class VideoNotMeasured(Refusal):
    """The video's length could not be found out (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VideoUnreachable(VideoNotMeasured):
    """The video could not be fetched (network, timeout, non-2xx, a refused address)."""


class VideoUnmeasurable(VideoNotMeasured):
    """The bytes fetched are not an MP4 with a movie header."""


class VideoTooLong(Refusal):
    def __init__(self, max_seconds: int) -> None:
        super().__init__(max_seconds)
        self.max_seconds = max_seconds


class DurationMismatch(Refusal):
    """A declared length too far from the measured one."""

    def __init__(self, declared: int, seconds: int) -> None:
        super().__init__(declared, seconds)
        self.declared = declared
        self.seconds = seconds


class KeyInUse(Refusal):
    """Another request holds this Idempotency-Key (retry shortly)."""


class KeyReused(Refusal):
    """The Idempotency-Key was used with another request."""


class LeaseLost(Refusal):
    """The create outlasted its lease on the Idempotency-Key; it was not carried out.

    Another request may hold the key now: this one must not create a second job. Its
    reservation is released; a retry answers.
    """


# --- an account's keys (the operator's CLI and the dashboard) -----------------------------------


class AccountMissing(Refusal):
    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


class KeyMissing(Refusal):
    """No such key in this account (another account's key is not told apart)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class LiveKeysLocked(Refusal):
    """A live key asked for by an account that has never bought credits."""


class KeyNotRollable(Refusal):
    """Only an active key that was not rolled yet can be rolled (``why``: revoked, expired,
    rolled)."""

    def __init__(self, key_id: str, why: str) -> None:
        super().__init__(key_id, why)
        self.key_id = key_id
        self.why = why


class WebhookRefused(Refusal):
    """The webhooks service refused the URL given for a new key (``error``: its error body)."""

    def __init__(self, error: dict[str, object]) -> None:
        super().__init__(error.get("code"))
        self.error = error


class WebhooksUnreachable(Refusal):
    """The webhooks service did not answer in time; nothing was created."""
