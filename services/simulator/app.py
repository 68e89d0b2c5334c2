"""The provider simulator: a Replicate-style predictions API and an ElevenLabs-style dubbing
API, with latency, failures and small real artifacts, a Stripe-Checkout-style payment provider
(``checkout``, ``checkout_page``), plus ``/__admin`` test controls.

Failures (``failure_rate`` of creates, kind drawn from ``failure_kinds``, or forced per job by
a ``[sim:<kind>]`` marker anywhere in the input): ``timeout`` holds the create for
``hang_seconds`` then answers 504 (no task); ``unavailable`` answers 503 (no task);
``rejected`` answers 422 ``invalid input``; ``failed`` creates a task that ends ``failed``;
``stuck`` creates a task that never finishes; ``overrun`` makes the whole natural length, past
the ``end_time`` or ``max_duration_seconds`` it was held to. A dubbing fails single target
languages when its source URL names them: ``?sim_fail_languages=de,fr`` (every one named: the
dubbing fails); it reports each language's status under ``languages``.

Results are as long as a real provider's would be (``lengths``): a dubbing is as long as its
source, read from the source's header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import structlog
import uvloop
from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contracts import signing
from services.contracts.providers import PROVIDER_OF, SERVICE_OF_MODEL
from services.runtime.http import ApiError, edge_middleware, json_response
from services.runtime.logging import configure_logging
from services.simulator import checkout, lengths, media
from services.simulator.checkout import CheckoutSettings
from services.simulator.state import FAILURE_KINDS, Config, State, Task

log = structlog.get_logger()

NAME = "simulator"
DEV_KEY = "sim-dev-provider-key"
DEV_WEBHOOK_SECRET = "whsec_c2ltLWRldi13ZWJob29rLXNlY3JldA=="  # noqa: S105 - dev default
_MARKER = re.compile(r"\[sim:([a-z]+)\]")
_WEBHOOK_TRIES = 3


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLIPMIX_SIMULATOR_", extra="ignore", frozen=True)

    port: int = 8090
    host: str = Field("127.0.0.1", validation_alias="CLIPMIX_HOST")
    log_level: str = Field("info", validation_alias="CLIPMIX_LOG_LEVEL")
    # Where the simulator's own URLs point (output files); default http://host:port.
    public_url: str | None = None
    api_key: str = DEV_KEY
    webhook_secret: str = DEV_WEBHOOK_SECRET
    latency_seconds: float = Field(0.5, ge=0)
    latency_jitter_seconds: float = Field(0.0, ge=0)
    failure_rate: float = Field(0.0, ge=0, le=1)
    failure_kinds: list[str] = Field(default_factory=lambda: ["unavailable", "failed"])
    hang_seconds: float = Field(30.0, ge=0)
    url_ttl_seconds: float = Field(3600.0, gt=0)
    # The payment provider's checkout (services/simulator/checkout.py): billing's secret key
    # and signing secret (the same development defaults), where its events go (unset: the
    # platform's public host, CLIPMIX_PUBLIC_BASE_URL, /webhooks/payments), their tries.
    checkout_secret_key: str = checkout.DEV_SECRET_KEY
    checkout_webhook_secret: str = checkout.DEV_WEBHOOK_SECRET
    checkout_webhook_url: str | None = None
    public_base_url: str = Field(
        "http://127.0.0.1:8080", validation_alias="CLIPMIX_PUBLIC_BASE_URL"
    )
    checkout_webhook_tries: int = Field(5, ge=1)
    checkout_webhook_backoff_seconds: float = Field(1.0, ge=0)
    checkout_webhook_timeout_seconds: float = Field(10.0, gt=0)

    def checkout(self) -> CheckoutSettings:
        return CheckoutSettings(
            secret_key=self.checkout_secret_key,
            webhook_secret=self.checkout_webhook_secret,
            events_url=self.checkout_webhook_url
            or f"{self.public_base_url.rstrip('/')}/webhooks/payments",
            webhook_tries=self.checkout_webhook_tries,
            webhook_backoff_seconds=self.checkout_webhook_backoff_seconds,
            webhook_timeout_seconds=self.checkout_webhook_timeout_seconds,
        )


STATE = web.AppKey("state", State)
SETTINGS = web.AppKey("settings", SimulatorSettings)
SESSION = web.AppKey("session", aiohttp.ClientSession)


class Background:
    """Webhook senders in flight (referenced so they are not garbage-collected)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()


BACKGROUND = web.AppKey("background", Background)
SIGNING = web.AppKey("signing", bytes)


def _base(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_url
    return (configured or f"http://{request.host}").rstrip("/")


def _auth(request: web.Request, *, header: str) -> None:
    given = request.headers.get(header, "")
    if header == "Authorization":
        given = given.removeprefix("Bearer ")
    if not hmac.compare_digest(given.encode(), request.app[SETTINGS].api_key.encode()):
        raise ApiError(401, "authentication_error", "unauthenticated", "Invalid API key.")


def _file_link(request: web.Request, task: Task, name: str) -> str:
    expires = int(time.time() + request.app[STATE].config.url_ttl_seconds)
    path = f"/files/{task.id}/{name}"
    sig = hmac.new(request.app[SIGNING], f"{path}{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{_base(request)}{path}?expires={expires}&sig={sig}"


async def _forced_or_rolled(request: web.Request, input: dict[str, Any]) -> str | None:
    """The failure this create suffers (if any); answers the request-level ones itself."""
    state = request.app[STATE]
    marker = _MARKER.search(orjson.dumps(input).decode())
    kind = marker.group(1) if marker and marker.group(1) in FAILURE_KINDS else None
    kind = kind or state.roll_failure()
    if kind == "timeout":
        await asyncio.sleep(state.config.hang_seconds)
        raise ApiError(504, "api_error", "timeout", "Timed out.")
    if kind == "unavailable":
        raise ApiError(503, "api_error", "unavailable", "Service unavailable, try again.")
    if kind == "rejected":
        raise ApiError(422, "invalid_request_error", "invalid_input", "invalid input: rejected")
    return kind


# --- Replicate-style predictions --------------------------------------------------------------


def _makes(model: str) -> str:
    """What a model makes (the provider map: contracts/providers.py); an unknown one, video."""
    service = SERVICE_OF_MODEL.get(model)
    return PROVIDER_OF[service].content_type if service is not None else "video/mp4"


def _prediction(request: web.Request, task: Task) -> dict[str, Any]:
    status = task.status(time.monotonic())
    output: Any = None
    if status == "succeeded":
        name = "output.wav" if _makes(task.model) == "audio/wav" else "output.mp4"
        output = _file_link(request, task, name)
    base = _base(request)
    return {
        "id": task.id,
        "version": task.model,
        "input": task.input,
        "status": status,
        "output": output,
        "error": "model crashed while generating" if status == "failed" else None,
        "webhook": task.webhook,
        "urls": {
            "get": f"{base}/v1/predictions/{task.id}",
            "cancel": f"{base}/v1/predictions/{task.id}/cancel",
        },
    }


async def create_prediction(request: web.Request) -> web.Response:
    _auth(request, header="Authorization")
    state = request.app[STATE]
    body = await request.json(loads=orjson.loads)
    key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    state.creates_by_key[key] += 1
    if key in state.by_key:
        return json_response(_prediction(request, state.tasks[state.by_key[key]]), 200)
    if not isinstance(body.get("input"), dict) or not body.get("version"):
        raise ApiError(422, "invalid_request_error", "invalid_input", "invalid input: shape")
    kind = await _forced_or_rolled(request, body["input"])
    seconds = await lengths.output_seconds(
        request.app[SESSION],
        "predictions",
        str(body["version"]),
        body["input"],
        overrun=kind == "overrun",
    )
    if key in state.by_key:  # the same key arrived while this one hung
        return json_response(_prediction(request, state.tasks[state.by_key[key]]), 200)
    task = state.create(
        "predictions",
        str(body["version"]),
        body["input"],
        key,
        body.get("webhook"),
        kind if kind in ("failed", "stuck") else "succeeded",
        seconds,
    )
    _schedule_webhook(request, task)
    return json_response(_prediction(request, task), 201)


def _task(request: web.Request, api: str) -> Task:
    task = request.app[STATE].tasks.get(request.match_info["id"])
    if task is None or task.api != api:
        raise ApiError(404, "invalid_request_error", "not_found", "Not found.")
    return task


async def get_prediction(request: web.Request) -> web.Response:
    _auth(request, header="Authorization")
    return json_response(_prediction(request, _task(request, "predictions")))


async def _slow_cancel(request: web.Request) -> None:
    state = request.app[STATE]
    state.cancel_requests += 1
    if state.config.cancel_delay_seconds:
        await asyncio.sleep(state.config.cancel_delay_seconds)


async def cancel_prediction(request: web.Request) -> web.Response:
    _auth(request, header="Authorization")
    await _slow_cancel(request)
    task = _task(request, "predictions")
    if task.status(time.monotonic()) in ("starting", "processing"):
        task.canceled = True
    return json_response(_prediction(request, task))


# --- ElevenLabs-style dubbing -----------------------------------------------------------------


_DUBBING_STATUS = {"succeeded": "dubbed", "failed": "failed", "canceled": "canceled"}


def _dubbing(task: Task) -> dict[str, Any]:
    now = time.monotonic()
    status = _DUBBING_STATUS.get(task.status(now), "dubbing")
    languages = [
        {
            "language": lang,
            "status": _DUBBING_STATUS.get(state, "dubbing"),
            "error": "dubbing failed for this language" if state == "failed" else None,
        }
        for lang, state in task.languages(now)
    ]
    return {
        "dubbing_id": task.id,
        "name": task.key,
        "status": status,
        "target_languages": task.input.get("target_langs", []),
        "languages": languages,
        "error": "dubbing pipeline failed" if status == "failed" else None,
    }


def _failed_languages(source_url: Any) -> frozenset[str]:
    """The target languages a source URL asks the simulator to fail (``sim_fail_languages``)."""
    if not isinstance(source_url, str):
        return frozenset()
    named = parse_qs(urlsplit(source_url).query).get("sim_fail_languages", [])
    return frozenset(lang for value in named for lang in value.split(",") if lang)


async def create_dubbing(request: web.Request) -> web.Response:
    _auth(request, header="xi-api-key")
    state = request.app[STATE]
    body = await request.json(loads=orjson.loads)
    key = request.headers.get("Idempotency-Key") or str(body.get("name") or uuid.uuid4().hex)
    state.creates_by_key[key] += 1
    if key not in state.by_key:
        langs = body.get("target_langs")
        if not body.get("source_url") or not isinstance(langs, list) or not langs:
            raise ApiError(422, "invalid_request_error", "invalid_input", "invalid input: shape")
        kind = await _forced_or_rolled(request, body)
        seconds = await lengths.output_seconds(
            request.app[SESSION], "dubbing", "dubbing", body, overrun=kind == "overrun"
        )
        failing = _failed_languages(body.get("source_url"))
        if failing >= set(map(str, langs)):
            kind = kind if kind == "stuck" else "failed"  # no language left: the dubbing fails
        if key not in state.by_key:
            task = state.create(
                "dubbing",
                "dubbing",
                body,
                key,
                body.get("webhook_url"),
                kind if kind in ("failed", "stuck") else "succeeded",
                seconds,
                failed_languages=failing,
            )
            _schedule_webhook(request, task)
    task = state.tasks[state.by_key[key]]
    return json_response(
        {"dubbing_id": task.id, "expected_duration_sec": task.ready_at - task.created_at}
    )


async def get_dubbing(request: web.Request) -> web.Response:
    _auth(request, header="xi-api-key")
    return json_response(_dubbing(_task(request, "dubbing")))


async def delete_dubbing(request: web.Request) -> web.Response:
    _auth(request, header="xi-api-key")
    await _slow_cancel(request)
    task = _task(request, "dubbing")
    if task.status(time.monotonic()) in ("starting", "processing"):
        task.canceled = True
    return json_response({"status": "ok"})


async def dubbed_audio(request: web.Request) -> web.Response:
    _auth(request, header="xi-api-key")
    task = _task(request, "dubbing")
    states = dict(task.languages(time.monotonic()))
    language = request.match_info["language"]
    if language not in states or states[language] == "failed":
        raise ApiError(404, "invalid_request_error", "not_found", "No such language.")
    if states[language] != "succeeded":
        raise ApiError(425, "invalid_request_error", "not_ready", "Dubbing not finished.")
    payload = f"dub:{request.match_info['language']}".encode()
    return web.Response(body=media.mp4(task.seconds, payload=payload), content_type="video/mp4")


# --- files, media, webhooks -------------------------------------------------------------------


async def output_file(request: web.Request) -> web.Response:
    task = request.app[STATE].tasks.get(request.match_info["id"])
    path = request.path
    expires = request.query.get("expires", "")
    expected = hmac.new(request.app[SIGNING], f"{path}{expires}".encode(), hashlib.sha256)
    if (
        task is None
        or not expires.isdigit()
        or int(expires) < time.time()
        or not hmac.compare_digest(expected.hexdigest(), request.query.get("sig", ""))
    ):
        raise ApiError(404, "invalid_request_error", "expired", "Not found or expired.")
    if request.match_info["name"].endswith(".wav"):
        return web.Response(body=media.wav(task.seconds), content_type="audio/wav")
    return web.Response(body=media.mp4(task.seconds), content_type="video/mp4")


async def sample_video(request: web.Request) -> web.Response:
    seconds = float(request.match_info["seconds"])
    if not 0 < seconds <= 7200:
        raise ApiError(404, "invalid_request_error", "not_found", "No such sample.")
    return web.Response(body=media.mp4(seconds), content_type="video/mp4")


def _sign(secret: str, msg_id: str, stamp: str, body: bytes) -> str:
    """A provider webhook's ``webhook-signature``, as the jobs service checks it."""
    return signing.standard_signature(signing.secret_key(secret), msg_id, stamp, body)


def _schedule_webhook(request: web.Request, task: Task) -> None:
    if not task.webhook:
        return
    app = request.app

    def payload_of() -> dict[str, Any]:
        return _prediction(request, task) if task.api == "predictions" else _dubbing(task)

    async def send() -> None:
        await asyncio.sleep(max(0.0, task.ready_at - time.monotonic()))
        if task.outcome == "stuck" and not task.canceled:
            return
        body = orjson.dumps(payload_of())
        msg_id = f"msg_{secrets.token_hex(8)}"
        for attempt in range(_WEBHOOK_TRIES):
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                signing.ID_HEADER: msg_id,
                signing.TIMESTAMP_HEADER: stamp,
                signing.SIGNATURE_HEADER: _sign(app[SETTINGS].webhook_secret, msg_id, stamp, body),
            }
            try:
                async with asyncio.timeout(5):
                    async with app[SESSION].post(
                        str(task.webhook), data=body, headers=headers
                    ) as r:
                        if r.status < 300:
                            app[STATE].webhooks_sent += 1
                            return
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.2 * 2**attempt)
        log.info("webhook_gave_up", task_id=task.id)

    job = asyncio.create_task(send())
    app[BACKGROUND].tasks.add(job)
    job.add_done_callback(app[BACKGROUND].tasks.discard)


# --- admin ------------------------------------------------------------------------------------


async def get_config(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].config.public())


async def set_config(request: web.Request) -> web.Response:
    changes = await request.json(loads=orjson.loads)
    try:
        request.app[STATE].config.update(changes)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, "invalid_request_error", "invalid_config", str(exc)) from exc
    return json_response(request.app[STATE].config.public())


async def stats(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].stats())


async def forget(request: web.Request) -> web.Response:
    """Lose a task (reads answer 404, its idempotency key is free): a provider's data loss."""
    if not request.app[STATE].forget(request.match_info["id"]):
        raise ApiError(404, "invalid_request_error", "not_found", "Not found.")
    return json_response({"forgotten": True})


async def reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    request.app[checkout.CHECKOUT].state.reset()
    return json_response({"reset": True})


async def healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _session(app: web.Application) -> Any:
    async with aiohttp.ClientSession() as session:
        app[SESSION] = session
        yield
        for task in list(app[BACKGROUND].tasks):
            task.cancel()


def create_app(settings: SimulatorSettings) -> web.Application:
    app = web.Application(middlewares=[edge_middleware(NAME)])
    app[SETTINGS] = settings
    app[STATE] = State(
        Config(
            latency_seconds=settings.latency_seconds,
            latency_jitter_seconds=settings.latency_jitter_seconds,
            failure_rate=settings.failure_rate,
            failure_kinds=list(settings.failure_kinds),
            hang_seconds=settings.hang_seconds,
            url_ttl_seconds=settings.url_ttl_seconds,
        )
    )
    app[BACKGROUND] = Background()
    app[SIGNING] = secrets.token_bytes(32)
    app.cleanup_ctx.append(_session)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", healthz)
    r.add_post("/v1/predictions", create_prediction)
    r.add_get("/v1/predictions/{id}", get_prediction)
    r.add_post("/v1/predictions/{id}/cancel", cancel_prediction)
    r.add_post("/v1/dubbing", create_dubbing)
    r.add_get("/v1/dubbing/{id}", get_dubbing)
    r.add_delete("/v1/dubbing/{id}", delete_dubbing)
    r.add_get("/v1/dubbing/{id}/audio/{language}", dubbed_audio)
    r.add_get("/files/{id}/{name}", output_file)
    r.add_get(r"/media/sample-{seconds:\d+(?:\.\d+)?}s.mp4", sample_video)
    r.add_get("/__admin/config", get_config)
    r.add_post("/__admin/config", set_config)
    r.add_get("/__admin/stats", stats)
    r.add_post("/__admin/reset", reset)
    r.add_post("/__admin/forget/{id}", forget)
    checkout.install(app, settings.checkout(), settings.public_url)
    return app


def main() -> None:
    settings = SimulatorSettings()
    configure_logging(NAME, settings.log_level)
    log.info("starting", host=settings.host, port=settings.port)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
