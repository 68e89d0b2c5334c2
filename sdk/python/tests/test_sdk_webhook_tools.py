"""The webhook tools of issue 18 (pause, resume, recover, a delivery's exact request, the
signature doctor, the event catalog), the restricted keys' refusal and the CLI commands,
against a scripted local server: what each call sends and how the answer is read."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from scripted import Reply, ScriptedServer, error

import clipmix
from clipmix import cli

KEY = "rk_test_unit"  # a restricted key: sent like any other


def _endpoint(**more: Any) -> dict[str, Any]:
    return {
        "object": "webhook_endpoint",
        "url": "https://hooks.example.com/clipmix",
        "events": ["job.completed"],
        "api_key_id": "key_1",
        "created_at": "2026-12-06T20:00:00.000Z",
        "updated_at": "2026-12-06T20:00:00.000Z",
        "previous_secret_expires_at": None,
        "status": "enabled",
        "disabled_reason": None,
        "disabled_at": None,
        "failing_since": None,
        "held_events": 0,
        **more,
    }


DIAGNOSIS = {
    "object": "webhook_diagnosis",
    "delivery_id": "whd_1",
    "verified": False,
    "cause": "body_reencoded",
    "message": "The body was re-serialized before verifying: verify the raw bytes.",
    "checks": [
        {"name": "headers", "ok": True, "detail": "all three present"},
        {"name": "body", "ok": False, "detail": "differs at byte 8"},
    ],
    "first_difference": {"offset": 8, "expected": '":"evt', "received": '": "evt'},
}


def _client(server: ScriptedServer) -> clipmix.Client:
    return clipmix.Client(api_key=KEY, base_url=server.url, max_retries=0)


def test_pause_and_resume_send_what_the_api_takes(server: ScriptedServer) -> None:
    server.script = [
        Reply(200, _endpoint(status="paused")),
        Reply(200, _endpoint(released=3)),
        Reply(200, _endpoint(released=0)),
    ]
    with _client(server) as client:
        paused = client.webhook_endpoint.pause()
        resumed = client.webhook_endpoint.resume()
        dropped = client.webhook_endpoint.resume(deliver_held=False, idempotency_key="r-1")
    assert (paused.status, paused.is_enabled) == ("paused", False)
    assert (resumed.status, resumed.released, resumed.is_enabled) == ("enabled", 3, True)
    assert dropped.released == 0
    pause, resume, resume_dropping = server.seen
    assert (pause.method, pause.path, pause.body) == ("POST", "/api/v1/webhook/pause", b"")
    assert pause.headers["authorization"] == f"Bearer {KEY}"
    assert (resume.path, resume.json) == ("/api/v1/webhook/resume", {"deliver_held": True})
    assert resume_dropping.json == {"deliver_held": False}
    assert resume_dropping.headers["idempotency-key"] == "r-1"


def test_an_endpoint_reads_its_protection_fields(server: ScriptedServer) -> None:
    server.script = [
        Reply(
            200,
            _endpoint(
                status="disabled",
                disabled_reason="failing",
                disabled_at="2026-12-06T21:00:00Z",
                failing_since="2026-12-03T21:00:00Z",
                held_events=12,
            ),
        )
    ]
    with _client(server) as client:
        endpoint = client.webhook_endpoint.get()
    assert (endpoint.status, endpoint.disabled_reason, endpoint.held_events) == (
        "disabled",
        "failing",
        12,
    )
    assert endpoint.failing_since == "2026-12-03T21:00:00Z" and endpoint.released is None
    assert "held_events=12" in repr(endpoint)


def test_recover_takes_strings_datetimes_and_unix_seconds(server: ScriptedServer) -> None:
    answer = {
        "object": "webhook_recovery",
        "id": "rcv_1",
        "since": "2026-12-06T20:00:00Z",
        "until": None,
        "status": "queued",
        "queued": 4,
    }
    server.script = [Reply(202, answer), Reply(202, answer)]
    with _client(server) as client:
        first = client.webhook_endpoint.recover("2026-12-06T20:00:00Z", idempotency_key="rec-1")
        client.webhook_endpoint.recover(
            datetime(2026, 12, 6, 20, 0),
            until=1765054800,  # naive: UTC
        )
    assert (first.id, first.status, first.queued, first.until) == ("rcv_1", "queued", 4, None)
    assert first.response is not None and first.response.status_code == 202
    keyed, typed = server.seen
    assert keyed.path == "/api/v1/webhook/recover"
    assert keyed.json == {"since": "2026-12-06T20:00:00Z"}
    assert keyed.headers["idempotency-key"] == "rec-1"
    assert typed.json == {"since": "2026-12-06T20:00:00Z", "until": "2025-12-06T21:00:00Z"}
    # Every POST carries an Idempotency-Key: a retried recovery is the same recovery.
    assert typed.headers["idempotency-key"]


def test_recover_refuses_what_is_not_a_time_before_sending(server: ScriptedServer) -> None:
    with _client(server) as client:
        with pytest.raises(ValueError, match="since"):
            client.webhook_endpoint.recover("  ")
        with pytest.raises(TypeError, match="until"):
            client.webhook_endpoint.recover("2026-12-06T20:00:00Z", until=True)
    assert server.seen == []


def test_get_delivery_reads_the_exact_request(server: ScriptedServer) -> None:
    body = '{"id":"evt_1","object":"event"}'
    server.script = [
        Reply(
            200,
            {
                "object": "webhook_delivery",
                "id": "whd_1/x",
                "event_id": "evt_1",
                "event_type": "job.completed",
                "attempt": 2,
                "trigger": "retry",
                "attempted_at": "2026-12-06T20:00:00Z",
                "url": "https://hooks.example.com/clipmix",
                "succeeded": False,
                "status_code": 500,
                "request_headers": {"webhook-id": "evt_1", "content-type": "application/json"},
                "request_body": body,
            },
        )
    ]
    with _client(server) as client:
        delivery = client.webhook_endpoint.get_delivery("whd_1/x")
    assert server.seen[0].path == "/api/v1/webhook/deliveries/whd_1%2Fx"
    assert delivery.request_body == body and delivery.attempt == 2
    assert delivery.request_headers == {"webhook-id": "evt_1", "content-type": "application/json"}
    assert delivery.response is not None and delivery.response.request_id == "req_1"


def test_diagnose_sends_the_body_as_received_and_reads_the_verdict(
    server: ScriptedServer,
) -> None:
    server.script = [Reply(200, DIAGNOSIS), Reply(200, {**DIAGNOSIS, "verified": True})]
    received = b'{"id": "evt_1"}'
    with _client(server) as client:
        diagnosis = client.webhook_endpoint.diagnose(
            "whd_1",
            body=received,
            headers=[
                ("Webhook-Id", "evt_1"),
                ("webhook-signature", "v1,a"),
                ("Webhook-Signature", "v1,b"),
            ],
            signature="v1,c",
            received_at=1765054800,
        )
        client.webhook_endpoint.diagnose(
            "whd_1", signature="sha256=00", received_at=datetime(2026, 12, 6, tzinfo=timezone.utc)
        )
    assert (diagnosis.verified, diagnosis.cause) == (False, "body_reencoded")
    assert [c.name for c in diagnosis.checks] == ["headers", "body"]
    assert not diagnosis.checks[1].ok
    assert diagnosis.first_difference is not None and diagnosis.first_difference.offset == 8
    full, signature_only = server.seen
    assert full.path == "/api/v1/webhook/deliveries/whd_1/diagnose"
    assert full.json == {
        "body": '{"id": "evt_1"}',
        # Names lower-cased; a repeated header folded with a comma, as HTTP does.
        "headers": {"webhook-id": "evt_1", "webhook-signature": "v1,a, v1,b"},
        "signature": "v1,c",
        "received_at": 1765054800,
    }
    assert signature_only.json == {
        "signature": "sha256=00",
        "received_at": "2026-12-06T00:00:00Z",
    }


def test_diagnose_needs_a_body_or_a_signature(server: ScriptedServer) -> None:
    with _client(server) as client, pytest.raises(ValueError, match="body"):
        client.webhook_endpoint.diagnose("whd_1", headers={"webhook-id": "evt_1"})
    assert server.seen == []


def test_event_types_reads_the_catalog(server: ScriptedServer) -> None:
    schema = {"type": "object", "required": ["id", "type"], "properties": {}}
    server.script = [
        Reply(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "object": "event_type",
                        "type": "job.completed",
                        "description": "A job completed.",
                        "schema": schema,
                    }
                ],
            },
        )
    ]
    with _client(server) as client:
        catalog = client.webhook_endpoint.event_types()
    assert server.seen[0].path == "/api/v1/event-types"
    ((entry,),) = [catalog.data]
    assert (entry.type, entry.description, entry.schema) == (
        "job.completed",
        "A job completed.",
        schema,
    )


def test_permission_denied_is_its_own_class_naming_the_permission(
    server: ScriptedServer,
) -> None:
    server.script = [
        error(403, "permission_denied", "permission_error", permission="jobs:write"),
        error(403, "live_mode_not_enabled", "permission_error"),
    ]
    with _client(server) as client:
        with pytest.raises(clipmix.PermissionDeniedError) as denied:
            client.music.create(prompt="x")
        with pytest.raises(clipmix.PermissionDenied) as other:
            client.music.create(prompt="x")
    assert denied.value.permission == "jobs:write" and denied.value.status == 403
    # Still a PermissionDenied: code that caught every 403 keeps doing so.
    assert isinstance(denied.value, clipmix.PermissionDenied)
    assert not isinstance(other.value, clipmix.PermissionDeniedError)
    assert other.value.permission is None
    assert len(server.seen) == 2  # a 403 is not retried


def test_the_async_client_has_the_same_calls(server: ScriptedServer) -> None:
    server.script = [Reply(200, _endpoint(status="paused")), Reply(200, DIAGNOSIS)]

    async def run() -> tuple[clipmix.WebhookEndpoint, clipmix.WebhookDiagnosis]:
        async with clipmix.AsyncClient(api_key=KEY, base_url=server.url) as client:
            paused = await client.webhook_endpoint.pause()
            return paused, await client.webhook_endpoint.diagnose("whd_1", body="{}")

    paused, diagnosis = asyncio.run(run())
    assert paused.status == "paused" and diagnosis.cause == "body_reencoded"


# --- the CLI ------------------------------------------------------------------------------------


def _run(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(["--api-key", KEY, "--base-url", server.url, "--max-retries", "0", *argv])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_cli_pause_resume_and_recover(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script = [
        Reply(200, _endpoint(status="paused", held_events=2)),
        Reply(200, _endpoint(released=2)),
        Reply(
            202,
            {
                "object": "webhook_recovery",
                "id": "rcv_1",
                "since": "2026-12-06T20:00:00Z",
                "until": None,
                "status": "queued",
                "queued": 5,
            },
        ),
    ]
    code, out, _ = _run(server, capsys, "webhooks", "pause")
    assert code == 0 and "status" in out and "paused" in out and "held_events" in out
    code, out, _ = _run(server, capsys, "webhooks", "resume", "--no-deliver-held")
    assert code == 0 and "released" in out
    code, out, _ = _run(server, capsys, "webhooks", "recover", "--since", "2h")
    assert code == 0 and out.startswith("rcv_1  queued  5 failed deliveries since")
    assert server.seen[1].json == {"deliver_held": False}
    sent = server.seen[2].json["since"]
    ago = datetime.now(timezone.utc) - datetime.fromisoformat(sent.replace("Z", "+00:00"))
    assert 7190 < ago.total_seconds() < 7210


def test_cli_diagnose_reads_the_body_file_and_exits_1_when_it_does_not_verify(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"id": "evt_1"}\n')
    server.script = [Reply(200, DIAGNOSIS), Reply(200, {**DIAGNOSIS, "verified": True})]
    code, out, _ = _run(
        server, capsys,
        "webhooks", "diagnose", "whd_1", "--body-file", str(body),
        "--header", "webhook-id: evt_1", "--header", "X-ClipMix-Signature: sha256=ab:cd",
        "--signature", "v1,xyz", "--received-at", "1765054800",
    )  # fmt: skip
    assert code == 1
    assert "does NOT verify: body_reencoded" in out and "first difference at byte 8" in out
    assert "[FAIL] body" in out
    assert server.seen[0].json == {
        "body": '{"id": "evt_1"}\n',
        "headers": {"webhook-id": "evt_1", "x-clipmix-signature": "sha256=ab:cd"},
        "signature": "v1,xyz",
        "received_at": 1765054800,
    }
    code, out, _ = _run(
        server, capsys, "webhooks", "diagnose", "whd_1", "--signature", "v1,a", "--json"
    )
    assert code == 0 and json.loads(out)["verified"] is True


def test_cli_diagnose_usage_errors_exit_2_before_any_request(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(server, capsys, "webhooks", "diagnose", "whd_1")
    assert code == 2 and "--body-file" in err
    code, _, err = _run(
        server, capsys, "webhooks", "diagnose", "whd_1", "--body-file", str(tmp_path / "none")
    )
    assert code == 2 and "--body-file" in err and "none" in err
    code, _, err = _run(server, capsys, "webhooks", "diagnose", "whd_1", "--header", "no colon")
    assert code == 2 and "'Name: value'" in err
    code, _, err = _run(server, capsys, "webhooks", "recover", "--since", "yesterday")
    assert code == 2 and "is not a time" in err
    assert server.seen == []


def test_cli_event_types_and_a_refusal_naming_the_permission(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script = [
        Reply(
            200,
            {
                "object": "list",
                "data": [
                    {"object": "event_type", "type": "job.completed", "description": "Done."},
                    {"object": "event_type", "type": "keys.expiring", "description": "Soon."},
                ],
            },
        ),
        error(
            403,
            "permission_denied",
            "permission_error",
            permission="webhook:write",
            message="This key lacks the webhook:write permission.",
        ),
    ]
    code, out, _ = _run(server, capsys, "webhooks", "event-types")
    assert code == 0 and out.splitlines() == ["job.completed  Done.", "keys.expiring  Soon."]
    code, out, err = _run(server, capsys, "webhooks", "pause")
    assert code == 1 and out == ""
    assert "403 permission_denied: This key lacks the webhook:write permission." in err


def test_cli_reads_the_body_from_stdin(
    server: ScriptedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Stdin:
        buffer = io.BytesIO(b"\xff raw")

    monkeypatch.setattr("sys.stdin", Stdin)
    server.script = [Reply(200, DIAGNOSIS)]
    code, _, _ = _run(server, capsys, "webhooks", "diagnose", "whd_1", "--body-file", "-")
    assert code == 1
    # Bytes that are not UTF-8 arrive as U+FFFD, at the same place.
    assert server.seen[0].json == {"body": "\ufffd raw"}


# --- typed events -------------------------------------------------------------------------------


def _event(type_: str, **more: Any) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": type_,
        "created": "2026-12-06T20:00:00Z",
        "test": True,
        "api_key_id": "key_1",
        "job": None,
        **more,
    }


def test_events_are_read_into_the_typed_object_of_their_type() -> None:
    from scripted import job

    completed = clipmix.Event.from_dict(_event("job.completed", job=job()))
    disabled = clipmix.Event.from_dict(
        _event(
            "endpoint.disabled",
            data={
                "url": "https://hooks.example.com/x",
                "reason": "gone",
                "disabled_at": "2026-12-06T20:00:00Z",
                "failing_since": None,
            },
        )
    )
    expiring = clipmix.Event.from_dict(
        _event(
            "keys.expiring",
            data={"key_display": "sk_live_…a1b2", "name": None, "expires_at": "2026-12-13T00:00Z"},
        )
    )
    fired = clipmix.Event.from_dict(_event("webhook.test"))
    newer = clipmix.Event.from_dict(_event("wallet.something", data={"x": 1}))
    assert isinstance(completed, clipmix.JobCompletedEvent) and completed.job.id == "job_1"
    assert isinstance(disabled, clipmix.EndpointDisabledEvent) and disabled.data is not None
    assert (disabled.data.url, disabled.data.reason) == ("https://hooks.example.com/x", "gone")
    assert isinstance(expiring, clipmix.KeysExpiringEvent) and expiring.data is not None
    assert expiring.data.key_display == "sk_live_…a1b2"
    assert isinstance(fired, clipmix.WebhookTestEvent)
    # A type newer than this SDK is a plain Event, its data kept as JSON.
    assert type(newer) is clipmix.Event and newer.data == {"x": 1}
    # A job event without its job is not pretended to be the typed shape.
    assert type(clipmix.Event.from_dict(_event("job.failed"))) is clipmix.Event


def test_construct_event_answers_the_typed_object() -> None:
    secret = clipmix.webhooks.generate_secret()
    body = json.dumps(
        _event(
            "keys.expiring",
            data={"key_display": "rk_test_…9f", "name": "ci", "expires_at": "2026-12-13T00:00Z"},
        )
    )
    headers = clipmix.webhooks.sign(body, secret, "evt_1")
    event = clipmix.webhooks.construct_event(body, headers, secret)
    assert isinstance(event, clipmix.KeysExpiringEvent)
    assert event.data is not None and event.data.name == "ci"


def test_diagnose_takes_http_server_headers(server: ScriptedServer) -> None:
    """``self.headers`` of an http.server handler (an email Message: items(), not a Mapping)."""
    from email.message import Message

    received = Message()
    received["Webhook-Id"] = "evt_1"
    received["Webhook-Timestamp"] = "1765054800"
    server.script = [Reply(200, DIAGNOSIS)]
    with _client(server) as client:
        client.webhook_endpoint.diagnose("whd_1", body="{}", headers=received)
    assert server.seen[0].json["headers"] == {
        "webhook-id": "evt_1",
        "webhook-timestamp": "1765054800",
    }


def test_cli_delivery_shows_the_exact_request_and_body_only_prints_the_bytes(
    server: ScriptedServer, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    row = {
        "object": "webhook_delivery",
        "id": "whd_1",
        "event_id": "evt_1",
        "event_type": "job.completed",
        "attempt": 1,
        "trigger": "first",
        "attempted_at": "2026-12-06T20:00:00Z",
        "url": "https://hooks.example.com/x",
        "succeeded": True,
        "status_code": 200,
        "request_headers": {"webhook-id": "evt_1"},
        "request_body": '{"id":"evt_1","note":"é"}',
    }
    server.script = [Reply(200, row), Reply(200, row)]
    argv = ["--api-key", KEY, "--base-url", server.url, "webhooks", "delivery", "whd_1"]
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    out = capsysbinary.readouterr().out.decode()
    assert done.value.code == 0
    assert "POST https://hooks.example.com/x" in out and "webhook-id: evt_1" in out
    with pytest.raises(SystemExit):
        cli.main([*argv, "--body"])
    assert capsysbinary.readouterr().out == '{"id":"evt_1","note":"é"}'.encode()
