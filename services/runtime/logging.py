"""structlog set-up: JSON lines, context from contextvars, secrets scrubbed from every value."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Anything that looks like one of our secrets is cut down to its non-secret prefix. No word
# boundary before the prefix: "Bearer%20sk_live_…" or "token_sk_live_…" must be caught too.
# A whsec_ body is standard base64 (``+``, ``/``, ``=``), and any secret may appear
# percent-encoded in a URL (``%2B``): the whole of it goes, not only the part before a ``+``.
# Restricted keys (rk_live_/rk_test_) are secrets like full ones.
_SECRET = re.compile(r"([sr]k_(?:live|test)_|whsec_|opk_)(?:[A-Za-z0-9_+/=-]|%[0-9A-Fa-f]{2}){4,}")
# Passwords inside connection URLs (amqp://user:password@host, postgresql://…).
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s\"]+):[^@\s\"]+@")


def redact(text: str) -> str:
    text = _SECRET.sub(lambda m: m.group(1) + "[redacted]", text)
    return _URL_PASSWORD.sub(r"\1:[redacted]@", text)


def _redact_line(_logger: Any, _name: str, line: str) -> str:
    # The last step, on the rendered line, so it also catches secrets inside values that only
    # become text while rendering (exceptions, bytes, dict keys).
    return redact(line)


def configure_logging(service: str, level: str = "info") -> None:
    """JSON logs on stdout; every line carries the service name and the bound context.

    Lines from libraries that use the standard ``logging`` module (aiohttp, aio-pika) go
    through the same renderer and the same redaction.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO

    def add_service(
        _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
    ]
    render: list[Any] = [
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
        _redact_line,
    ]
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    # aio-pika/aiormq chatter at INFO is noise; their warnings still come through.
    for noisy in ("aiormq", "aio_pika", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, *render],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
