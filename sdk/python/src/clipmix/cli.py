"""``clipmix``: the ClipMix API from the command line.

Exit status: 0 done; 1 the API or the network refused (the error is on stderr), a test fire
failed, or ``webhooks diagnose`` found the delivery does not verify; 2 bad usage; 3 a
waited-for job ended ``failed`` or ``canceled``; 4 ``--wait`` gave up before the job ended.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TextIO
from urllib.parse import urlsplit

import httpx

from clipmix import _cli_more as more
from clipmix import webhooks
from clipmix._sync import Client
from clipmix._version import __version__
from clipmix.errors import APIError, ClipMixError, JobWaitTimeout
from clipmix.types import (
    EVENT_CLASSES,
    Balance,
    Delivery,
    EndpointDisabledEvent,
    Event,
    EventType,
    Job,
    JobLanguageCompletedEvent,
    JobStreamEvent,
    KeysExpiringEvent,
    LedgerEntry,
    Page,
    Pricing,
    WalletLowEvent,
    WebhookDiagnosis,
)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_JOB_FAILED, EXIT_WAIT_TIMEOUT = 0, 1, 2, 3, 4
SERVICES = ("music", "translations", "family_videos", "avatars")
JOB_STATUSES = ("queued", "processing", "completed", "failed", "canceled")
EVENT_TYPES = tuple(EVENT_CLASSES)
# --since 2h: that long ago (s, m, h or d).
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")

Runner = Callable[[Client, argparse.Namespace], int]


# --- output ------------------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)


def _percent(job: Job) -> str:
    return f"{round(job.progress * 100):3d}%"


def _job_line(job: Job) -> str:
    return (
        f"{job.id}  {job.service}  {job.status}  {_percent(job).strip()}"
        f"  cost {job.cost_credits} credits{'  (test)' if job.test else ''}"
    )


def _show_job(job: Job) -> None:
    print(_job_line(job))
    if job.error is not None:
        print(f"  error: {job.error.code}: {job.error.message}")
    for artifact in job.artifacts:
        what = artifact.content_type or "file"
        if artifact.language:
            what = f"{artifact.language} {what}"
        print(f"  {what}: {artifact.url}")
        if artifact.expires_at:
            print(f"    (link expires {artifact.expires_at})")
    sys.stdout.flush()


class Progress:
    """The state of a job being waited for: one line rewritten in place on a terminal, a new
    plain line whenever status or progress changes otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last: tuple[str, str, int | None] | None = None
        self.position: int | None = None  # in the queue, while queued (live progress)
        self.job: Job | None = None

    def event(self, event: JobStreamEvent) -> None:
        """A live progress event: the queue position shows while queued; a language delivered
        gets a line of its own."""
        if event.queue_position is not None and self.job is not None:
            self.position = event.queue_position
            self.update(self.job)
        elif event.type == "job.language_completed" and event.language is not None:
            if self.tty:
                self.stream.write("\r\x1b[K")
            url = event.language.output.url if event.language.output else ""
            self.stream.write(f"  {event.language.language} delivered: {url}\n")
            self.stream.flush()

    def update(self, job: Job) -> None:
        self.job = job
        if job.status != "queued":
            self.position = None
        elapsed = time.monotonic() - self.started
        queue = f"  queue position {self.position}" if self.position is not None else ""
        line = f"{job.id}  {job.status:<10} {_percent(job)}  {elapsed:5.1f} s{queue}"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            state = (job.status, _percent(job), self.position)
            if state == self._last:
                return
            self._last = state
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --- jobs --------------------------------------------------------------------------------------


def _finish(client: Client, args: argparse.Namespace, job: Job) -> int:
    """Print the job; with --wait, wait for it first (progress on stderr)."""
    if getattr(args, "wait", False) and not job.is_terminal:
        progress = Progress(sys.stderr)
        progress.update(job)
        try:
            job = client.jobs.wait(
                job.id,
                timeout=args.wait_timeout,
                poll_interval=args.poll_interval,
                on_update=progress.update,
                on_event=progress.event,
                stream=not args.poll,
            )
        except JobWaitTimeout as exc:
            progress.done()
            print(f"error: {exc}", file=sys.stderr)
            _output_job(args, exc.job)
            return EXIT_WAIT_TIMEOUT
        progress.done()
    _output_job(args, job)
    if getattr(args, "wait", False) and job.status in ("failed", "canceled"):
        return EXIT_JOB_FAILED
    return EXIT_OK


def _output_job(args: argparse.Namespace, job: Job) -> None:
    if args.json:
        _print_json(job.raw)
    else:
        _show_job(job)


def _create_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "idempotency_key": args.idempotency_key,
        "sandbox_scenario": args.sandbox_scenario,
        "quote_id": args.quote,
    }


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one value")
    return items


def _music_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "prompt": args.prompt,
        "lyrics": args.lyrics,
        "duration_seconds": args.duration,
        "style": args.style,
        "vocals": args.vocals,
    }


def _translation_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "video_url": args.video_url,
        "target_languages": args.target_languages,
        "tier": args.tier,
        "voice_clone": True if args.voice_clone else None,
        "source_language": args.source_language,
        "duration_seconds": args.duration,
    }


def _family_video_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "photo_urls": args.photo_url,
        "mode": args.mode,
        "music_job_id": args.music_job_id,
        "music_url": args.music_url,
        "aspect_ratio": args.aspect_ratio,
    }


def _avatar_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kind": args.kind,
        "tier": args.tier,
        "face_image_url": args.face_image_url,
        "duration_seconds": args.duration,
        "target_video_url": args.target_video_url,
        "script": args.script,
        "audio_url": args.audio_url,
    }


# Each service: its resource's name on the client and how its options become fields.
FIELDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "music": _music_fields,
    "translations": _translation_fields,
    "family_videos": _family_video_fields,
    "avatars": _avatar_fields,
}


def _creator(service: str) -> Runner:
    def create(client: Client, args: argparse.Namespace) -> int:
        resource = getattr(client, service)
        fields = FIELDS[service](args)
        if args.dry_run:
            if args.quote or args.wait:
                print("error: --dry-run creates nothing: no --quote or --wait", file=sys.stderr)
                return EXIT_USAGE
            return more.show_quote(args, resource.quote(**fields))
        return _finish(client, args, resource.create(**fields, **_create_options(args)))

    return create


def _quoter(service: str) -> Runner:
    def quote(client: Client, args: argparse.Namespace) -> int:
        return more.show_quote(args, getattr(client, service).quote(**FIELDS[service](args)))

    return quote


def _jobs_get(client: Client, args: argparse.Namespace) -> int:
    return _finish(client, args, client.jobs.get(args.id))


def _jobs_wait(client: Client, args: argparse.Namespace) -> int:
    args.wait = True
    return _finish(client, args, client.jobs.get(args.id))


def _jobs_cancel(client: Client, args: argparse.Namespace) -> int:
    return _finish(client, args, client.jobs.cancel(args.id))


def _jobs_list(client: Client, args: argparse.Namespace) -> int:
    filters = {"service": args.service, "status": args.status}
    if args.all:
        jobs = list(client.jobs.list(limit=args.limit, **filters))
        if args.json:
            _print_json({"object": "list", "data": [j.raw for j in jobs], "has_more": False})
            return EXIT_OK
        has_more = False
    else:
        page = client.jobs.page(limit=args.limit, starting_after=args.starting_after, **filters)
        if args.json:
            _print_json(page.raw)
            return EXIT_OK
        jobs, has_more = page.data, page.has_more
    for job in jobs:
        print(f"{job.id}  {job.service:<13} {job.status:<10} {job.created_at}  {job.cost_credits}")
    if not jobs:
        print("no jobs")
    if has_more:
        print(f"(more: --starting-after {jobs[-1].id}, or --all)")
    return EXIT_OK


# --- account -----------------------------------------------------------------------------------


def _balance(client: Client, args: argparse.Namespace) -> int:
    if args.what == "low-balance":
        return more.low_balance(client, args)
    if args.set is not None or args.default or args.off:
        print("error: --set, --default and --off go with `balance low-balance`", file=sys.stderr)
        return EXIT_USAGE
    balance: Balance = client.balance()
    if args.json:
        _print_json(balance.raw)
        return EXIT_OK
    print(f"available  {balance.available} credits")
    print(f"reserved   {balance.reserved} credits")
    print(f"paid left  {balance.paid_remaining}, bonus left {balance.bonus_remaining}")
    print(f"live mode  {'enabled' if balance.live_enabled else 'not enabled (buy credits)'}")
    return EXIT_OK


def _pricing(client: Client, args: argparse.Namespace) -> int:
    pricing: Pricing = client.pricing()
    if args.json:
        _print_json(pricing.raw)
        return EXIT_OK
    print(f"price book v{pricing.version} (since {pricing.effective_at}), in credits")
    print(f"$1 = {pricing.credits_per_usd} credits")
    for price in pricing.prices:
        print(f"  {price.service:<13} {price.item:<28} {price.credits:>5} per {price.unit}")
    for bonus in pricing.top_up_bonuses:
        print(f"  top-up from ${bonus.min_usd}: +{bonus.bonus_percent}% bonus")
    return EXIT_OK


def _ledger(client: Client, args: argparse.Namespace) -> int:
    page: Page[LedgerEntry] = client.ledger.page(limit=args.limit)
    if args.json:
        _print_json(page.raw)
        return EXIT_OK
    for e in page.data:
        print(
            f"{e.created_at}  {e.type:<11} {e.amount:>7}  available {e.available_after:>8}"
            f"  reserved {e.reserved_after:>6}  {e.job_id or e.reference or ''}"
        )
    if not page.data:
        print("no ledger entries")
    return EXIT_OK


# --- webhooks ----------------------------------------------------------------------------------


_ENDPOINT_FIELDS = (
    "url",
    "events",
    "status",
    "disabled_reason",
    "disabled_at",
    "failing_since",
    "held_events",
    "released",
    "previous_secret_expires_at",
)


def _endpoint_out(args: argparse.Namespace, data: dict[str, Any]) -> int:
    if args.json:
        _print_json(data)
        return EXIT_OK
    width = max(len(name) for name in _ENDPOINT_FIELDS)
    for name in _ENDPOINT_FIELDS:
        if data.get(name) is not None:
            value = data[name]
            print(f"{name:<{width}} {', '.join(value) if isinstance(value, list) else value}")
    if data.get("secret"):
        print(f"{'secret':<{width}} {data['secret']}   (shown once: store it now)")
    if data.get("status") == "disabled":
        print(
            "(disabled: events keep queuing; `clipmix webhooks resume` enables it and"
            " delivers them)"
        )
    return EXIT_OK


def _webhooks_get(client: Client, args: argparse.Namespace) -> int:
    return _endpoint_out(args, client.webhook_endpoint.get().raw)


def _webhooks_set(client: Client, args: argparse.Namespace) -> int:
    return _endpoint_out(args, client.webhook_endpoint.set(args.url, args.events).raw)


def _webhooks_delete(client: Client, args: argparse.Namespace) -> int:
    deleted = client.webhook_endpoint.delete()
    if args.json:
        _print_json(deleted.raw)
    else:
        print("webhook endpoint deleted")
    return EXIT_OK


def _webhooks_rotate(client: Client, args: argparse.Namespace) -> int:
    return _endpoint_out(args, client.webhook_endpoint.rotate_secret().raw)


def _webhooks_test(client: Client, args: argparse.Namespace) -> int:
    result = client.webhook_endpoint.test()
    if args.json:
        _print_json(result.raw)
    else:
        d = result.delivery
        detail = f"HTTP {d.status_code}" if d and d.status_code else (d.error if d else "")
        print(f"{result.event_id}  {'delivered' if result.succeeded else 'failed'}  {detail}")
    return EXIT_OK if result.succeeded else EXIT_ERROR


def _webhooks_deliveries(client: Client, args: argparse.Namespace) -> int:
    page: Page[Delivery] = client.webhook_endpoint.deliveries_page(limit=args.limit)
    if args.json:
        _print_json(page.raw)
        return EXIT_OK
    for d in page.data:
        outcome = "ok" if d.succeeded else (d.error or "failed")
        print(
            f"{d.id}  {d.attempted_at}  {d.event_type:<14} attempt {d.attempt} ({d.trigger})"
            f"  {d.status_code or '-'}  {outcome}"
        )
    if not page.data:
        print("no deliveries")
    return EXIT_OK


def _webhooks_redeliver(client: Client, args: argparse.Namespace) -> int:
    queued = client.webhook_endpoint.redeliver(args.id)
    if args.json:
        _print_json(queued.raw)
    else:
        print(f"{queued.event_id} ({queued.event_type}) queued again")
    return EXIT_OK


def _webhooks_delivery(client: Client, args: argparse.Namespace) -> int:
    delivery = client.webhook_endpoint.get_delivery(args.id)
    if args.body:
        # Exactly the bytes signed, nothing added: to diff with what your server received.
        sys.stdout.flush()
        sys.stdout.buffer.write((delivery.request_body or "").encode())
        sys.stdout.buffer.flush()
        return EXIT_OK
    if args.json:
        _print_json(delivery.raw)
        return EXIT_OK
    outcome = "ok" if delivery.succeeded else (delivery.error or "failed")
    print(
        f"{delivery.id}  {delivery.attempted_at}  {delivery.event_type} {delivery.event_id}"
        f"  attempt {delivery.attempt} ({delivery.trigger})  {delivery.status_code or '-'}"
        f"  {outcome}"
    )
    print(f"POST {delivery.url}")
    for name, value in (delivery.request_headers or {}).items():
        print(f"{name}: {value}")
    print()
    print(delivery.request_body if delivery.request_body is not None else "(body not kept)")
    return EXIT_OK


def _webhooks_pause(client: Client, args: argparse.Namespace) -> int:
    return _endpoint_out(args, client.webhook_endpoint.pause().raw)


def _webhooks_resume(client: Client, args: argparse.Namespace) -> int:
    endpoint = client.webhook_endpoint.resume(deliver_held=args.deliver_held)
    return _endpoint_out(args, endpoint.raw)


def moment(value: str) -> str | int:
    """A ``--since``/``--until``/``--received-at`` value: RFC 3339 (sent as given), Unix
    seconds, or a span ago such as ``90s``, ``30m``, ``2h``, ``3d``."""
    text = value.strip()
    if re.fullmatch(r"\d{9,11}", text):
        return int(text)
    ago = _AGO.match(text)
    if ago:
        then = datetime.now(timezone.utc) - timedelta(seconds=int(ago[1]) * _UNITS[ago[2]])
        return then.isoformat(timespec="seconds").replace("+00:00", "Z")
    # Anything shaped like a date goes as given: the API checks it and names the field.
    if not _DATE.match(text):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time: give RFC 3339 (2026-12-06T21:00:00Z), Unix seconds or a"
            " span ago (30m, 2h, 3d)"
        )
    return text


def _webhooks_recover(client: Client, args: argparse.Namespace) -> int:
    recovery = client.webhook_endpoint.recover(
        args.since, args.until, idempotency_key=args.idempotency_key
    )
    if args.json:
        _print_json(recovery.raw)
        return EXIT_OK
    span = f"since {recovery.since}" + (f" until {recovery.until}" if recovery.until else "")
    print(f"{recovery.id}  {recovery.status}  {recovery.queued} failed deliveries {span}")
    if recovery.queued:
        print("(sent again in event order, with their original event ids)")
    return EXIT_OK


def header(value: str) -> tuple[str, str]:
    """``--header 'Name: value'``."""
    name, colon, rest = value.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        raise argparse.ArgumentTypeError(f"{value!r} is not 'Name: value'")
    return name.strip(), rest.strip()


def _read_body(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _show_diagnosis(diagnosis: WebhookDiagnosis) -> None:
    verdict = "verifies" if diagnosis.verified else f"does NOT verify: {diagnosis.cause or '?'}"
    print(f"{diagnosis.delivery_id}  {verdict}")
    if diagnosis.message:
        print(f"  {diagnosis.message}")
    for check in diagnosis.checks:
        mark = "skip" if check.skipped else "ok" if check.ok else "FAIL"
        print(f"  [{mark}] {check.name:<9} {check.detail}")
    difference = diagnosis.first_difference
    if difference is not None:
        print(f"  first difference at byte {difference.offset} (after {difference.before!r}):")
        print(f"    signed   {difference.expected!r}")
        print(f"    received {difference.received!r}")


def _webhooks_diagnose(client: Client, args: argparse.Namespace) -> int:
    try:
        body = _read_body(args.body_file) if args.body_file is not None else None
    except OSError as exc:
        print(f"error: --body-file: {exc.strerror or exc}: {args.body_file}", file=sys.stderr)
        return EXIT_USAGE
    if body is None and args.signature is None:
        print(
            "error: give --body-file (the body as received), --signature, or both", file=sys.stderr
        )
        return EXIT_USAGE
    diagnosis = client.webhook_endpoint.diagnose(
        args.delivery_id,
        body=body,
        headers=args.header or None,
        signature=args.signature,
        received_at=args.received_at,
    )
    if args.json:
        _print_json(diagnosis.raw)
    else:
        _show_diagnosis(diagnosis)
    return EXIT_OK if diagnosis.verified else EXIT_ERROR


def _webhooks_event_types(client: Client, args: argparse.Namespace) -> int:
    catalog: Page[EventType] = client.webhook_endpoint.event_types()
    if args.json:
        _print_json(catalog.raw)
        return EXIT_OK
    width = max((len(t.type) for t in catalog.data), default=0)
    for event_type in catalog.data:
        print(f"{event_type.type:<{width}}  {event_type.description}")
    if not catalog.data:
        print("no event types")
    return EXIT_OK


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S")


def forward(
    http: httpx.Client, url: str, event: Event, secret: str, attempts: int
) -> tuple[int | None, str, int]:
    """POST the event, signed with both schemes, to ``url``: (status, note, attempts used).
    Connection errors, timeouts, 429 and 5xx are tried again, at most ``attempts`` times."""
    body = json.dumps(event.raw, separators=(",", ":"), ensure_ascii=False).encode()
    status: int | None = None
    note = ""
    for attempt in range(1, attempts + 1):
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"clipmix-cli/{__version__} (webhooks listen)",
            **webhooks.sign(body, secret, event.id),
        }
        try:
            response = http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            status, note = None, f"{type(exc).__name__}: {exc}"
        else:
            status, note = response.status_code, response.reason_phrase
            if response.status_code < 500 and response.status_code != 429:
                return status, note, attempt
        if attempt < attempts:
            time.sleep(0.5 * attempt)
    return status, note, attempts


def _webhooks_listen(client: Client, args: argparse.Namespace) -> int:
    target = urlsplit(args.forward_to)
    if target.scheme not in ("http", "https") or not target.netloc:
        print("error: --forward-to must be an http(s) URL", file=sys.stderr)
        return EXIT_USAGE
    secret = args.secret or webhooks.generate_secret()
    if not secret.startswith(webhooks.SECRET_PREFIX):
        print("error: --secret must be a whsec_ secret", file=sys.stderr)
        return EXIT_USAGE
    wanted = set(args.events) if args.events else None
    # With --json, stdout carries one JSON line per event; the banner goes to stderr.
    banner = sys.stderr if args.json else sys.stdout
    print(f"Webhook signing secret: {secret}", file=banner, flush=True)
    print("(give it to your receiver to verify deliveries; Ctrl-C stops)", file=banner, flush=True)

    def ready(_cursor: str | None) -> None:
        print(
            f"Ready: forwarding this key's events from now on to {args.forward_to}",
            file=banner,
            flush=True,
        )

    forwarded = 0
    with httpx.Client(timeout=args.forward_timeout, follow_redirects=False) as http:
        try:
            for event in client.events.follow(wait=args.poll_wait, on_ready=ready):
                if wanted is not None and event.type not in wanted:
                    continue
                status, note, tries = forward(
                    http, args.forward_to, event, secret, args.forward_attempts
                )
                job_id = event.job.id if event.job else "-"
                if status is not None and 200 <= status < 300:
                    outcome = f"[{status}] {note}"
                else:
                    shown = f"[{status}] {note}" if status is not None else note
                    outcome = f"FAILED {shown} (gave up after {tries} attempt(s))"
                if args.json:
                    _print_json_line(
                        {
                            "event_id": event.id,
                            "type": event.type,
                            "job_id": job_id,
                            "status": status,
                            "attempts": tries,
                            "ok": status is not None and 200 <= status < 300,
                        }
                    )
                else:
                    print(f"{_now()}  {event.type:<14} {event.id}  {job_id}  -> {outcome}")
                    sys.stdout.flush()
                forwarded += 1
                if args.max_events is not None and forwarded >= args.max_events:
                    return EXIT_OK
        except KeyboardInterrupt:
            return EXIT_OK
    return EXIT_OK  # pragma: no cover - follow() does not end


def _print_json_line(data: Any) -> None:
    print(json.dumps(data, separators=(",", ":")), flush=True)


# --- events ------------------------------------------------------------------------------------


def _events_list(client: Client, args: argparse.Namespace) -> int:
    page: Page[Event] = client.events.page(limit=args.limit, type=args.type)
    if args.json:
        _print_json(page.raw)
        return EXIT_OK
    for e in page.data:
        print(f"{e.id}  {e.created}  {e.type:<17} {_about(e)}")
    if not page.data:
        print("no events")
    return EXIT_OK


def _about(event: Event) -> str:
    """What an event is about, in a few words: its job, or its data."""
    if isinstance(event, JobLanguageCompletedEvent) and event.data is not None:
        return f"{event.job.id} {event.data.language}"
    if event.job is not None:
        return event.job.id
    if isinstance(event, EndpointDisabledEvent) and event.data is not None:
        return f"{event.data.url} ({event.data.reason})"
    if isinstance(event, KeysExpiringEvent) and event.data is not None:
        return f"{event.data.key_display} expires {event.data.expires_at}"
    if isinstance(event, WalletLowEvent) and event.data is not None:
        return f"{event.data.available} credits left, below {event.data.threshold}"
    return "-"


def _events_get(client: Client, args: argparse.Namespace) -> int:
    event = client.events.get(args.id)
    _print_json(event.raw)
    return EXIT_OK


# --- the parser --------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    """Options accepted before and after the command (``clipmix --json balance`` and
    ``clipmix balance --json``)."""
    common = argparse.ArgumentParser(add_help=False)
    sup = argparse.SUPPRESS
    common.add_argument("--api-key", default=sup, help="API key (default: $CLIPMIX_API_KEY)")
    common.add_argument("--base-url", default=sup, help="API URL (default: $CLIPMIX_BASE_URL)")
    common.add_argument("--json", action="store_true", default=sup, help="print JSON")
    common.add_argument("--timeout", type=float, default=sup, help="seconds per request")
    common.add_argument("--max-retries", type=int, default=sup, help="retries of safe failures")
    return common


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _add_create_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idempotency-key", help="repeat-safe key (default: one per call)")
    parser.add_argument(
        "--sandbox-scenario", help="test keys: e.g. 'delay=5' or 'fail=provider_timeout'"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only quote it: the exact price and the ETA (nothing is created or charged)",
    )
    parser.add_argument(
        "--quote", type=_quote_id, metavar="QUOTE_ID", help="charge exactly this quote (quo_…)"
    )
    _add_wait_options(parser, flag=True)


def _add_wait_options(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    if flag:
        parser.add_argument("--wait", action="store_true", help="wait until the job settles")
    parser.add_argument(
        "--wait-timeout", type=float, default=600.0, help="give up waiting after (s)"
    )
    parser.add_argument("--poll-interval", type=float, default=0.5, help=argparse.SUPPRESS)
    parser.add_argument(
        "--poll", action="store_true", help="poll instead of following the live progress stream"
    )


def _music_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--prompt", required=True)
    c.add_argument("--lyrics")
    c.add_argument("--duration", type=int, help="seconds, 5-300 (default 60)")
    c.add_argument("--style")
    c.add_argument("--vocals", choices=["none", "female", "male", "duet"])


def _translation_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--video-url", required=True)
    c.add_argument(
        "--target-languages", type=_csv, required=True, help="comma-separated, e.g. es,de"
    )
    c.add_argument("--tier", choices=["standard", "premium"], required=True)
    c.add_argument("--voice-clone", action="store_true")
    c.add_argument("--source-language")
    c.add_argument("--duration", type=int, help="seconds (measured when left out)")


def _family_video_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--photo-url", action="append", required=True, help="repeat for each photo")
    c.add_argument("--mode", choices=["moment", "story", "album", "chronicle"], required=True)
    c.add_argument("--music-job-id")
    c.add_argument("--music-url")
    c.add_argument("--aspect-ratio", choices=["16:9", "9:16", "1:1", "4:5"])


def _avatar_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--kind", choices=["faceswap", "talking_head"], required=True)
    c.add_argument("--tier", choices=["economy", "balanced", "premium"], required=True)
    c.add_argument("--face-image-url", required=True)
    c.add_argument("--duration", type=int, required=True, help="seconds, 1-300")
    c.add_argument("--target-video-url", help="faceswap")
    c.add_argument("--script", help="talking_head (or --audio-url)")
    c.add_argument("--audio-url", help="talking_head (or --script)")


def _quote_id(value: str) -> str:
    if not re.fullmatch(r"quo_[0-9a-z]{26}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a quote id (quo_…)")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="clipmix",
        description="The ClipMix API from the command line.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"clipmix {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def leaf(
        sub: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        run: Runner,
        help: str,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(run=run)
        return p

    def group(name: str, help: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        p = groups.add_parser(name, help=help, description=help)
        return p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def job_reads(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        leaf(sub, "get", _jobs_get, "show a job").add_argument("id")
        w = leaf(sub, "wait", _jobs_wait, "wait until a job settles, showing progress")
        w.add_argument("id")
        _add_wait_options(w, flag=False)
        leaf(sub, "cancel", _jobs_cancel, "cancel a running job").add_argument("id")

    music = group("music", "songs from a prompt and lyrics")
    c = leaf(music, "create", _creator("music"), "create a song")
    _music_args(c)
    _add_create_options(c)
    job_reads(music)

    tr = group("translations", "dub a video into other languages")
    c = leaf(tr, "create", _creator("translations"), "create a translation")
    _translation_args(c)
    _add_create_options(c)
    job_reads(tr)

    fv = group("family-videos", "videos from photos")
    c = leaf(fv, "create", _creator("family_videos"), "create a family video")
    _family_video_args(c)
    _add_create_options(c)
    job_reads(fv)

    av = group("avatars", "faceswaps and talking heads")
    c = leaf(av, "create", _creator("avatars"), "create an avatar video")
    _avatar_args(c)
    _add_create_options(c)
    job_reads(av)

    qt = group("quote", "the exact price of a create (nothing is created) and the ETA")
    for name, service, add in (
        ("music", "music", _music_args),
        ("translations", "translations", _translation_args),
        ("family-videos", "family_videos", _family_video_args),
        ("avatars", "avatars", _avatar_args),
    ):
        add(leaf(qt, name, _quoter(service), f"quote a {name} create (valid 15 min)"))

    jobs = group("jobs", "jobs of every service")
    job_reads(jobs)
    ls = leaf(jobs, "list", _jobs_list, "list jobs, newest first")
    ls.add_argument("--service", choices=SERVICES)
    ls.add_argument("--status", choices=JOB_STATUSES)
    ls.add_argument("--limit", type=_positive, default=10, help="jobs per page (1-100)")
    ls.add_argument("--starting-after", help="the page after this job id")
    ls.add_argument("--all", action="store_true", help="every page")

    fl = leaf(jobs, "follow", more.jobs_follow, "print a job's live progress until it settles")
    fl.add_argument("id")
    fl.add_argument("--last-event-id", type=int, help="resume after this event")

    bal = leaf(groups, "balance", _balance, "show the account's credits (low-balance: its warning)")
    bal.add_argument(
        "what", nargs="?", choices=["low-balance"], help="the low-balance warning's standing"
    )
    bal.add_argument("--set", type=int, metavar="CREDITS", help="low-balance: warn below this")
    bal.add_argument("--default", action="store_true", help="low-balance: the default threshold")
    bal.add_argument("--off", action="store_true", help="low-balance: no warning")
    leaf(groups, "pricing", _pricing, "show the price book")
    lg = leaf(groups, "ledger", _ledger, "show the account's ledger, newest first")
    lg.add_argument("--limit", type=_positive, default=20)

    wh = group("webhooks", "the API key's webhook endpoint, and forwarding events locally")
    leaf(wh, "get", _webhooks_get, "show the endpoint")
    s = leaf(wh, "set", _webhooks_set, "create or change the endpoint (prints the secret once)")
    s.add_argument("--url", required=True)
    s.add_argument("--events", type=_csv, help="comma-separated event types")
    leaf(wh, "delete", _webhooks_delete, "remove the endpoint")
    leaf(wh, "rotate-secret", _webhooks_rotate, "a new signing secret (printed once)")
    leaf(wh, "test", _webhooks_test, "send a webhook.test event now")
    d = leaf(wh, "deliveries", _webhooks_deliveries, "the delivery log, newest first")
    d.add_argument("--limit", type=_positive, default=20)
    leaf(wh, "redeliver", _webhooks_redeliver, "send a logged delivery again").add_argument("id")
    dl = leaf(wh, "delivery", _webhooks_delivery, "one attempt: the exact headers and body sent")
    dl.add_argument("id")
    dl.add_argument("--body", action="store_true", help="print only the body, byte for byte")
    leaf(wh, "pause", _webhooks_pause, "stop deliveries; events keep queuing until resume")
    r = leaf(
        wh, "resume", _webhooks_resume, "enable a paused or disabled endpoint (sends what queued)"
    )
    r.add_argument(
        "--no-deliver-held",
        dest="deliver_held",
        action="store_false",
        help="do not send the deliveries queued meanwhile (mark them failed: recover later)",
    )
    rc = leaf(
        wh,
        "recover",
        _webhooks_recover,
        "send every failed delivery since a time again, in order, once each",
    )
    rc.add_argument("--since", type=moment, required=True, help="RFC 3339, Unix seconds or 2h")
    rc.add_argument("--until", type=moment, help="RFC 3339, Unix seconds or 30m (default: now)")
    rc.add_argument("--idempotency-key", help="repeat-safe key (default: one per call)")
    dg = leaf(
        wh,
        "diagnose",
        _webhooks_diagnose,
        "why a delivery does not verify on your side: the failing check and the likely cause",
    )
    dg.add_argument("delivery_id", help="the delivery's id (whd_…, from `webhooks deliveries`)")
    dg.add_argument("--body-file", help="the body exactly as your server received it ('-': stdin)")
    dg.add_argument("--signature", help="the signature your code computed")
    dg.add_argument(
        "--header",
        type=header,
        action="append",
        metavar="'NAME: VALUE'",
        help="a header as your server received it (repeat), e.g. 'webhook-timestamp: 1765…'",
    )
    dg.add_argument(
        "--received-at", type=moment, help="when it arrived by your clock (RFC 3339 or Unix s)"
    )
    leaf(wh, "event-types", _webhooks_event_types, "every event type (--json: their schemas)")
    listen = leaf(
        wh,
        "listen",
        _webhooks_listen,
        "receive this key's events and forward them, signed, to a local URL",
    )
    listen.add_argument("--forward-to", required=True, help="e.g. http://localhost:3000/hooks")
    listen.add_argument("--events", type=_csv, help="only these types, comma-separated")
    listen.add_argument("--secret", help="sign with this whsec_ secret (default: a new one)")
    listen.add_argument("--forward-timeout", type=float, default=10.0, help="seconds per POST")
    listen.add_argument("--forward-attempts", type=_positive, default=3, help="tries per event")
    listen.add_argument("--max-events", type=_positive, help="stop after forwarding this many")
    listen.add_argument("--poll-wait", type=int, default=25, help=argparse.SUPPRESS)

    st = leaf(groups, "status", more.status, "the status page; status webhook subscriptions")
    st.add_argument(
        "status_action",
        nargs="?",
        choices=["subscribe", "subscriptions", "unsubscribe"],
        metavar="ACTION",
        help="subscribe URL | subscriptions | unsubscribe ID (none: the summary)",
    )
    st.add_argument("target", nargs="?", help="the URL to subscribe, or the id to unsubscribe")

    ev = group("events", "this key's events (what its webhook receives)")
    e = leaf(ev, "list", _events_list, "list events, newest first")
    e.add_argument("--type", choices=EVENT_TYPES)
    e.add_argument("--limit", type=_positive, default=20)
    leaf(ev, "get", _events_get, "show an event").add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        client = Client(
            api_key=getattr(args, "api_key", None),
            base_url=getattr(args, "base_url", None),
            timeout=getattr(args, "timeout", 30.0),
            max_retries=getattr(args, "max_retries", 3),
        )
    except (ClipMixError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        with client:
            code = args.run(client, args)
    except APIError as exc:
        if args.json:
            print(json.dumps(exc.body if exc.body is not None else {}), file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_ERROR
    except ClipMixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
