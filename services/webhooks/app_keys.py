"""Typed application keys of the webhooks service."""

from __future__ import annotations

from aiohttp import web

from services.messaging.outbox import OutboxRelay
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.service_layer import Webhooks
from services.webhooks.waker import EventWaker

WEBHOOKS = web.AppKey("webhooks", Webhooks)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
EVENTS_WAKER = web.AppKey("events_waker", EventWaker)
# Publishes the notices staged in the outbox (an endpoint disabled).
NOTICE_RELAY = web.AppKey("notice_relay", OutboxRelay)
