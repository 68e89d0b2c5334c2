"""The ``clipmix`` commands of quotes, live progress, low balance and the status page (the
parser is built in ``cli.py``; these print what the API answers)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from clipmix._sync import Client
from clipmix.types import JobStreamEvent, LowBalance, Quote, StatusSubscription

EXIT_OK, EXIT_USAGE = 0, 2


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def show_quote(args: argparse.Namespace, quote: Quote) -> int:
    if args.json:
        print_json(quote.raw)
        return EXIT_OK
    test = "  (test key: sandbox jobs are free)" if quote.test else ""
    print(f"{quote.id}  {quote.service}  {quote.credits} credits{test}")
    print(f"  price book v{quote.price_version}; valid until {quote.expires_at}")
    eta = quote.eta
    tier = f" {eta.tier}" if eta.tier else ""
    if eta.samples:
        print(
            f"  ETA{tier}: p50 {_seconds(eta.p50_seconds)}, p95 {_seconds(eta.p95_seconds)}"
            f" ({eta.samples} jobs over the last {eta.window})"
        )
    else:
        print(f"  ETA{tier}: no data (no live job completed over the last {eta.window})")
    if "duration_seconds" in quote.input:
        print(f"  priced for {quote.input['duration_seconds']} s")
    print(f"  create it at this price: add --quote {quote.id}")
    return EXIT_OK


def stream_line(event: JobStreamEvent) -> str:
    """One event of a job's live progress, in a few words."""
    shown = f"[{event.id}] " if event.id is not None else ""
    if event.type == "queue_position":
        return f"{shown}queue position {event.queue_position}"
    if event.type == "job.language_completed" and event.language is not None:
        url = event.language.output.url if event.language.output else ""
        return f"{shown}{event.language.language} delivered  {url}"
    job = event.job
    if job is None:
        return f"{shown}{event.type}"
    line = f"{shown}{event.type}  {job.status}  {round(job.progress * 100)}%"
    if job.error is not None:
        line += f"  {job.error.code}: {job.error.message}"
    return line


def jobs_follow(client: Client, args: argparse.Namespace) -> int:
    """Print a job's live progress until it settles (one JSON line per event with --json)."""
    for event in client.jobs.stream(args.id, last_event_id=args.last_event_id):
        if args.json:
            print(json.dumps({"id": event.id, "type": event.type, **event.raw}), flush=True)
        else:
            print(stream_line(event), flush=True)
    return EXIT_OK


def _show_low_balance(args: argparse.Namespace, low: LowBalance) -> int:
    if args.json:
        print_json(low.raw)
        return EXIT_OK
    if low.threshold == 0:
        threshold = "off"
    else:
        threshold = f"{low.threshold} credits ({low.threshold_source})"
    print(f"threshold  {threshold}; the default would be {low.default_threshold}")
    print(f"available  {low.available} credits ({'LOW' if low.low else 'above the threshold'})")
    print(f"reserved   {low.reserved} credits by queued and running jobs")
    print(f"spent      {low.consumed_24h} over 24 h, {low.hourly_rate} over the last hour")
    if low.runway_hours is not None:
        print(f"runway     {low.runway_hours:.1f} h at the last hour's rate")
    if low.crossed_at:
        print(f"went below {low.crossed_at}")
    return EXIT_OK


def low_balance(client: Client, args: argparse.Namespace) -> int:
    chosen = [
        name for name in ("set", "default", "off") if getattr(args, name) not in (None, False)
    ]
    if len(chosen) > 1:
        print("error: give one of --set, --default and --off", file=sys.stderr)
        return EXIT_USAGE
    if args.set is not None:
        return _show_low_balance(args, client.set_low_balance(args.set))
    if args.default:
        return _show_low_balance(args, client.set_low_balance(None))
    if args.off:
        return _show_low_balance(args, client.set_low_balance(0))
    return _show_low_balance(args, client.low_balance())


def _subscription_line(sub: StatusSubscription) -> str:
    return f"{sub.id}  {sub.url}  since {sub.created_at}"


def status(client: Client, args: argparse.Namespace) -> int:
    """``clipmix status`` [subscribe URL | subscriptions | unsubscribe ID]."""
    action, target = args.status_action, args.target
    if (action in ("subscribe", "unsubscribe")) != (target is not None):
        needs = {"subscribe": "a URL", "unsubscribe": "a subscription id"}.get(action or "")
        print(f"error: status {action or ''} takes {needs or 'no argument'}", file=sys.stderr)
        return EXIT_USAGE
    if action == "subscribe":
        sub = client.status.subscribe(target)
        if args.json:
            print_json(sub.raw)
        else:
            print(_subscription_line(sub))
            print(f"secret {sub.secret}   (shown once: store it now)")
        return EXIT_OK
    if action == "subscriptions":
        page = client.status.subscriptions()
        if args.json:
            print_json(page.raw)
        for sub in [] if args.json else page.data:
            print(_subscription_line(sub))
        if not args.json and not page.data:
            print("no status subscriptions")
        return EXIT_OK
    if action == "unsubscribe":
        gone = client.status.unsubscribe(target)
        if args.json:
            print_json(gone.raw)
        else:
            print(f"{gone.id} deleted")
        return EXIT_OK
    return _summary(client, args)


def _summary(client: Client, args: argparse.Namespace) -> int:
    summary = client.status.summary()
    if args.json:
        print_json(summary.raw)
        return EXIT_OK
    print(f"{summary.page.name}: {summary.status.description}")
    for c in summary.components:
        uptime = "  ".join(
            f"{period} {'-' if value is None else f'{value:g}%'}"
            for period, value in c.uptime.items()
        )
        print(f"  {c.name:<14} {c.clipmix_status or c.status:<22} {uptime}")
    for incident in summary.incidents:
        print(f"incident {incident.id}  {incident.status}  {incident.name}")
        if incident.incident_updates:
            print(f"  {incident.incident_updates[0].body}")
    for window in summary.scheduled_maintenances:
        print(
            f"maintenance {window.id}  {window.status}  {window.scheduled_for} to"
            f" {window.scheduled_until}  {window.name}"
        )
    return EXIT_OK
