"""A scripted HTTP server on 127.0.0.1 for the SDK's unit tests (standard library only, so the
tests run on every Python the SDK supports).

Each request takes the next scripted answer: ``Reply(status, body, headers)``, ``DROP`` (the
connection is closed without an answer) or ``Sleep(seconds, reply)``. Every request is kept
(method, path, query, headers, body) for the test to inspect.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    """A body sent as is (e.g. Server-Sent Events), then the connection closed."""

    text: str
    status: int = 200
    content_type: str = "text/event-stream"


@dataclass
class Sleep:
    seconds: float
    reply: Reply | Raw


DROP = "drop"
Scripted = Union[Reply, Sleep, Raw, str]


@dataclass
class Seen:
    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ScriptedServer:
    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with server._lock:
                    server.seen.append(
                        Seen(
                            time.monotonic(),
                            self.command,
                            parts.path,
                            parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    step: Scripted = server.script.pop(0) if server.script else Reply(500)
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = step.reply
                if step == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(step, Raw):
                    raw = step.text.encode()
                    self.send_response(step.status)
                    self.send_header("Content-Type", step.content_type)
                    self.send_header("Content-Length", str(len(raw)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(raw)
                    self.close_connection = True
                    return
                assert isinstance(step, Reply)
                payload = b"" if step.body is None else json.dumps(step.body).encode()
                self.send_response(step.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_{len(server.seen)}")
                for name, value in step.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ScriptedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def job(job_id: str = "job_1", status: str = "completed", **more: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "object": "job",
        "service": "music",
        "status": status,
        "test": True,
        "created_at": "2026-11-28T14:00:00.000Z",
        "started_at": None,
        "completed_at": None,
        "progress": 1.0 if status == "completed" else 0.5,
        "input": {"prompt": "a lullaby", "duration_seconds": 30},
        "output": None,
        "error": None,
        "cost_credits": 0,
        **more,
    }


def error(status: int, code: str, type_: str = "invalid_request_error", **more: Any) -> Reply:
    headers = more.pop("headers", {})
    return Reply(
        status,
        {"error": {"type": type_, "code": code, "message": f"{code} happened", **more}},
        headers,
    )
