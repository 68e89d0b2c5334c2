"""How much output a job's price pays for. No I/O.

Every price is for a bounded amount of work: the seconds of music or avatar asked for, the
seconds of source a translation was quoted for (measured by the gateway), a family video's
length for its mode. The adapters hold the provider to that length, and a result longer than
it is not delivered: the job fails and its credits go back (docs/billing.md, "Paid length").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from services.contracts.jobs import Service
from services.media import length

# The longest family video each mode makes (the price is per video, so its length is bounded).
FAMILY_VIDEO_SECONDS: dict[str, int] = {"moment": 30, "story": 180, "album": 300, "chronicle": 600}
# A result may run this much past the paid length (an encoder pads its last frame or block).
TOLERANCE_SECONDS = 1.0


def paid_seconds(service: Service, input: Mapping[str, Any]) -> int | None:
    """The length the job's price covers; None when its input names none (nothing to hold)."""
    if service is Service.FAMILY_VIDEOS:
        return FAMILY_VIDEO_SECONDS.get(str(input.get("mode")))
    value = input.get("duration_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return math.ceil(value)


def longer_than_paid(service: Service, input: Mapping[str, Any], seconds: float | None) -> bool:
    """True when a result of ``seconds`` is more than the job paid for (unknown: not judged)."""
    paid = paid_seconds(service, input)
    return paid is not None and seconds is not None and seconds > paid + TOLERANCE_SECONDS


def overrun(service: Service, input: Mapping[str, Any], data: bytes, content_type: str) -> bool:
    """True when the result file ``data`` runs past what the job paid for.

    A file whose header does not give its length (a format we do not read) is not judged: the
    provider was held to the paid length when the job was submitted.
    """
    return longer_than_paid(service, input, length.seconds(data, content_type))
