"""The signature doctor: why a delivery did not verify on the customer's server.

Given what one attempt sent (its headers and the body bytes signed, kept in the delivery log),
the endpoint's secrets, and what the customer's server received or computed (the body as it
reached their code, the headers, the signature their code computed, their clock), it runs four
checks in the order a failure explains the next — headers, body, secret, timestamp — and names
the first that fails as the likely cause. The rule of each signature is the shared one
(``services.contracts.signing``). Pure: no I/O.

It never answers a signature of its own over a body the caller sent: that would sign anything
with the endpoint's secret for whoever holds the API key (a forgery service). It only says
whether the caller's signature matches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from services.contracts import signing
from services.contracts.webhook_doctor import Cause

# The headers a delivery carries that a verifier of each scheme needs; lower case, as HTTP
# compares them.
STANDARD_HEADERS = (signing.ID_HEADER, signing.TIMESTAMP_HEADER, signing.SIGNATURE_HEADER)
CLIPMIX_HEADERS = (signing.CLIPMIX_SIGNATURE_HEADER.lower(),)
NEEDED = STANDARD_HEADERS + CLIPMIX_HEADERS
# Bytes of each side shown from the first difference on, and of the common part before it.
EXCERPT_BYTES = 24
_HEX = re.compile(r"(?:sha256=)?([0-9a-fA-F]{64})")
_B64 = re.compile(r"(?:v1,)?([A-Za-z0-9+/]{43}=)")


@dataclass(frozen=True)
class Sent:
    """What one attempt sent: headers as written, the body bytes signed, when."""

    headers: Mapping[str, str]
    body: bytes
    attempted_at: datetime

    def header(self, name: str) -> str | None:
        return _lookup(self.headers, name)


@dataclass(frozen=True)
class Secrets:
    """The endpoint's signing keys now (raw bytes): the current one and the rotated-out one."""

    current: bytes | None = field(repr=False)  # never in a log line through a repr
    previous: bytes | None = field(default=None, repr=False)
    # When the previous one stopped (or stops) signing.
    previous_expires_at: datetime | None = None


@dataclass(frozen=True)
class Received:
    """What the customer's server got or computed; every part optional."""

    body: bytes | None = None
    headers: Mapping[str, str] | None = None
    signature: str | None = None
    received_at: float | None = None  # unix seconds, by their clock


@dataclass(frozen=True)
class Check:
    name: Literal["headers", "body", "secret", "timestamp"]
    ok: bool
    detail: str
    skipped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "skipped": self.skipped, "detail": self.detail,
                **self.extra}  # fmt: skip


@dataclass(frozen=True)
class Diagnosis:
    verified: bool
    cause: Cause | None
    message: str
    checks: list[Check]
    first_difference: dict[str, Any] | None


def _lookup(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def first_difference(expected: bytes, received: bytes) -> dict[str, Any] | None:
    """Where two byte strings first differ, with a little of each from there; None if equal."""
    if expected == received:
        return None
    offset = next(
        (i for i, (a, b) in enumerate(zip(expected, received, strict=False)) if a != b),
        min(len(expected), len(received)),
    )

    def excerpt(data: bytes) -> str:
        return data[offset : offset + EXCERPT_BYTES].decode("utf-8", "replace")

    def byte(data: bytes) -> str | None:
        return f"0x{data[offset]:02x}" if offset < len(data) else None

    return {
        "offset": offset,
        "expected": excerpt(expected),
        "received": excerpt(received),
        "expected_byte": byte(expected),
        "received_byte": byte(received),
        "before": expected[max(0, offset - EXCERPT_BYTES) : offset].decode("utf-8", "replace"),
        "expected_length": len(expected),
        "received_length": len(received),
    }


def _check_headers(sent: Sent, received: Received) -> Check:
    """Every header the caller's scheme needs (the scheme of their signature; both when no
    signature is given) must have arrived."""
    if received.headers is None:
        return Check("headers", True, "Not given: checked against the headers as sent.", True)
    offered = parse_signature(received.signature) if received.signature else None
    needed: tuple[str, ...] = NEEDED
    if offered is not None:
        needed = STANDARD_HEADERS if offered.scheme == "standard" else CLIPMIX_HEADERS
    missing = [
        name
        for name in needed
        if sent.header(name) is not None and not (_lookup(received.headers, name) or "").strip()
    ]
    if missing:
        names = ", ".join(missing)
        return Check(
            "headers",
            False,
            f"{names} {'was' if len(missing) == 1 else 'were'} sent but did not reach your code:"
            " a proxy, load balancer or framework in between removed "
            f"{'it' if len(missing) == 1 else 'them'}.",
            extra={"missing": missing},
        )
    changed = [
        name
        for name in needed
        if sent.header(name) is not None and _lookup(received.headers, name) != sent.header(name)
    ]
    if changed:
        return Check(
            "headers",
            True,
            f"Present, but {', '.join(changed)} differ from this attempt's: are they another"
            " attempt's? Each attempt is signed afresh with its own timestamp.",
            extra={"differing": changed},
        )
    return Check("headers", True, "Every signature header arrived as sent.")


def _same_json(a: bytes, b: bytes) -> bool:
    try:
        return bool(orjson.loads(a) == orjson.loads(b))
    except orjson.JSONDecodeError:
        return False


def _check_body(sent: Sent, received: Received) -> tuple[Check, dict[str, Any] | None]:
    if received.body is None:
        return Check("body", True, "Not given: the body was not compared.", True), None
    difference = first_difference(sent.body, received.body)
    if difference is None:
        return Check("body", True, f"Byte for byte the {len(sent.body)} bytes sent."), None
    at = difference["offset"]
    same = _same_json(sent.body, received.body)
    if same:
        detail = (
            f"The same JSON, other bytes (first difference at byte {at}): the body was parsed"
            " and serialized again before it was verified. Verify the raw request body, before"
            " any JSON parsing."
        )
    else:
        detail = (
            f"Other content from byte {at} on: is it another event's body, or changed by"
            " middleware? Verify the raw request body exactly as it arrived."
        )
    return Check("body", False, detail, extra={"offset": at, "same_json": same}), difference


@dataclass(frozen=True)
class _Offered:
    scheme: Literal["standard", "clipmix"]
    value: str  # base64 (standard) or hex (clipmix), without its prefix


def parse_signature(text: str) -> _Offered | None:
    """The caller's signature in either scheme, with or without its prefix; None if neither.
    A whole header's value (several signatures) is read for its first one."""
    first = re.split(r"[\s,]+(?=v1,|sha256=)", text.strip())[0].strip().rstrip(",")
    if found := _HEX.fullmatch(first):
        return _Offered("clipmix", found.group(1).lower())
    if found := _B64.fullmatch(first):
        return _Offered("standard", found.group(1))
    return None


def _signature(scheme: str, key: bytes, msg_id: str, stamp: str, body: bytes) -> str:
    if scheme == "clipmix":
        return signing.clipmix_signature(signing.secret_string(key), body).removeprefix("sha256=")
    return signing.standard_signature(key, msg_id, stamp, body).removeprefix("v1,")


def _mistaken(scheme: str, key: bytes, msg_id: str, stamp: str, body: bytes) -> str:
    """The signature of the classic key mix-up of ``scheme``: Standard Webhooks keyed with the
    ``whsec_…`` string itself, or ours keyed with the decoded bytes."""
    if scheme == "clipmix":
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return signing.standard_signature(
        signing.secret_string(key).encode(), msg_id, stamp, body
    ).removeprefix("v1,")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _sent_signatures(sent: Sent, scheme: str) -> list[str]:
    if scheme == "clipmix":
        header = sent.header(signing.CLIPMIX_SIGNATURE_HEADER) or ""
        return [v.strip().removeprefix("sha256=") for v in header.split(",") if v.strip()]
    header = sent.header(signing.SIGNATURE_HEADER) or ""
    return [v.removeprefix("v1,") for v in header.split() if v.startswith("v1,")]


def _check_secret(
    sent: Sent, secrets: Secrets, received: Received, body_ok: bool
) -> tuple[Check, Cause | None]:
    if received.signature is None:
        return Check(
            "secret", True, "Not given: pass the signature your code computed to check it.", True
        ), None
    offered = parse_signature(received.signature)
    if offered is None:
        return Check(
            "secret",
            False,
            "Not a signature of either scheme: expected v1,<base64> (webhook-signature) or"
            " sha256=<64 hex digits> (X-ClipMix-Signature).",
        ), "wrong_secret"
    scheme = offered.scheme
    header = "webhook-signature" if scheme == "standard" else "X-ClipMix-Signature"
    given_headers = received.headers or {}
    msg_id = _lookup(given_headers, signing.ID_HEADER) or sent.header(signing.ID_HEADER) or ""
    stamp = (
        _lookup(given_headers, signing.TIMESTAMP_HEADER)
        or sent.header(signing.TIMESTAMP_HEADER)
        or ""
    )
    if any(_equal(offered.value, s) for s in _sent_signatures(sent, scheme)):
        previous = secrets.previous
        if previous is not None and _equal(
            offered.value, _signature(scheme, previous, msg_id, stamp, sent.body)
        ):
            return Check(
                "secret",
                True,
                f"Your signature is one the {header} header carried, made with the previous"
                " secret: it signed this delivery too (the rotation's overlap), not those after"
                + _at(secrets.previous_expires_at)
                + "; deploy the current secret.",
            ), None
        return Check("secret", True, f"Your signature is one the {header} header carried."), None
    bodies = [received.body] if received.body is not None and not body_ok else []
    bodies.append(sent.body)
    keys = [("current", secrets.current), ("previous", secrets.previous)]
    for label, key in keys:
        if key is None:
            continue
        for body in bodies:
            if not _equal(offered.value, _signature(scheme, key, msg_id, stamp, body)):
                continue
            if label == "current":
                return _current(sent, body, msg_id, stamp), None
            return Check(
                "secret",
                False,
                "Your code used the previous secret, rotated out"
                + _until(secrets.previous_expires_at)
                + ": deploy the current secret (shown once by rotate-secret).",
            ), "previous_secret"
    if secrets.current is not None:
        for body in bodies:
            if _equal(offered.value, _mistaken(scheme, secrets.current, msg_id, stamp, body)):
                return Check("secret", False, _MIXUP[scheme]), "wrong_secret"
    if not body_ok:
        return Check(
            "secret",
            False,
            "Matches no secret of this endpoint over either body: fix the body first, then"
            " check again.",
        ), None
    return Check(
        "secret",
        False,
        "Matches neither the current nor the previous secret of this endpoint: is it another"
        " key's secret (each key has its own endpoint and secret; test and live keys too)?",
    ), "wrong_secret"


def _current(sent: Sent, body: bytes, msg_id: str, stamp: str) -> Check:
    """The caller's signature is the current secret's, yet not one this attempt carried."""
    if body is not sent.body:
        return Check(
            "secret", True, "Your code used the current secret, over the bytes it verified."
        )
    if (msg_id, stamp) != (sent.header(signing.ID_HEADER), sent.header(signing.TIMESTAMP_HEADER)):
        return Check(
            "secret",
            True,
            "Your code used the current secret, with another webhook-id or webhook-timestamp"
            " than this attempt's (each attempt is signed afresh: another attempt's headers?).",
        )
    return Check(
        "secret",
        False,
        "Your code used the current secret, but this attempt was signed before the latest"
        " rotation, with the secret in force then: redeliver it to have it signed anew.",
    )


_MIXUP = {
    "standard": "The right secret used the wrong way: webhook-signature is keyed with the"
    " base64-decoded part after whsec_, not with the whsec_… string itself.",
    "clipmix": "The right secret used the wrong way: X-ClipMix-Signature is keyed with the"
    " whsec_… string exactly as shown (UTF-8), not with its base64-decoded bytes.",
}


def _at(moment: datetime | None) -> str:
    return "" if moment is None else f" {moment.isoformat()}"


def _until(moment: datetime | None) -> str:
    return "" if moment is None else f" (it stopped signing at{_at(moment)})"


def _number(value: float) -> float | int:
    """Whole seconds as an integer (``4``, not ``4.0``)."""
    return int(value) if float(value).is_integer() else value


def _check_timestamp(sent: Sent, received: Received, tolerance: float) -> Check:
    stamp_text = (
        _lookup(received.headers or {}, signing.TIMESTAMP_HEADER)
        or sent.header(signing.TIMESTAMP_HEADER)
        or ""
    )
    if received.received_at is None:
        return Check("timestamp", True, "Not given: pass received_at (your clock) to check it.",
                     True)  # fmt: skip
    if not re.fullmatch(r"[0-9]{1,15}", stamp_text):
        return Check("timestamp", False, "The webhook-timestamp header is not unix seconds.")
    signed_at = int(stamp_text)
    skew = received.received_at - signed_at
    lag = received.received_at - sent.attempted_at.timestamp()
    extra = {
        "signed_at": signed_at,
        "received_at": _number(received.received_at),
        "skew_seconds": _number(round(skew, 3)),
        "tolerance_seconds": tolerance,
    }
    if abs(skew) <= tolerance:
        return Check(
            "timestamp", True, f"{abs(skew):.0f} s from the signed time, within {tolerance:g} s.",
            extra=extra,
        )  # fmt: skip
    way = "after" if skew > 0 else "before"
    return Check(
        "timestamp",
        False,
        f"Your clock read {abs(skew):.0f} s {way} the signed timestamp; verifiers accept"
        f" {tolerance:g} s either way. The attempt was sent {abs(lag):.0f} s"
        f" {'before' if lag > 0 else 'after'} your clock's reading: sync your server's clock"
        " (NTP), and verify when the request arrives, not later from a queue.",
        extra=extra,
    )


_MESSAGES: dict[Cause, str] = {
    "header_stripped": "A signature header was removed on the way to your code (a proxy or"
    " framework): let webhook-id, webhook-timestamp, webhook-signature and X-ClipMix-Signature"
    " through.",
    "body_reencoded": "Your code verified other bytes than were sent: the body was re-encoded"
    " (parsed and serialized again) before verification; verify the raw body.",
    "wrong_secret": "The signature was computed with a secret this endpoint does not sign with,"
    " or with the right secret used the wrong way.",
    "previous_secret": "The signature was computed with the previous, rotated-out secret: deploy"
    " the current one.",
    "timestamp_outside_tolerance": "The signed timestamp is too far from your server's clock:"
    " sync the clock, and verify on arrival.",
}


_OTHER_BODY = (
    "Your code verified other content than was sent (not the same JSON): another event's body,"
    " or changed on the way; verify the raw body exactly as it arrived."
)


def diagnose(
    sent: Sent,
    secrets: Secrets,
    received: Received,
    *,
    tolerance: float = signing.TOLERANCE_SECONDS,
) -> Diagnosis:
    """Run the four checks; the cause is the first failing check's."""
    headers = _check_headers(sent, received)
    body, difference = _check_body(sent, received)
    secret, secret_cause = _check_secret(sent, secrets, received, body.ok)
    timestamp = _check_timestamp(sent, received, tolerance)
    causes: list[tuple[Check, Cause | None]] = [
        (headers, "header_stripped"),
        (body, "body_reencoded"),
        (secret, secret_cause),
        (timestamp, "timestamp_outside_tolerance"),
    ]
    cause = next((c for check, c in causes if not check.ok and c is not None), None)
    checks = [headers, body, secret, timestamp]
    verified = all(c.ok for c in checks)
    if cause == "body_reencoded" and not body.extra.get("same_json"):
        message = _OTHER_BODY
    elif cause is not None:
        message = _MESSAGES[cause]
    elif verified:
        unchecked = [c.name for c in checks if c.skipped]
        message = "Everything given matches what was sent and signed." + (
            f" Not checked (not given): {', '.join(unchecked)}." if unchecked else ""
        )
    else:
        message = next(c.detail for c in checks if not c.ok)
    return Diagnosis(verified, cause, message, checks, difference)
