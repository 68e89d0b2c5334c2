"""The outgoing POST: resolve, vet the addresses, connect to a vetted one, read a little.

The name is resolved here and the request is made to the vetted IP itself (with the original
Host header and TLS server name), so a DNS answer that changes between the check and the
connect (DNS rebinding) cannot steer a delivery to an internal address.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from yarl import URL

from services.webhooks.domain.targets import TargetRefused, Unresolvable, split_target, vet

USER_AGENT = "ClipMix-Webhooks/1.0 (+https://clipmix.example/docs/webhooks)"


class Resolver(Protocol):
    async def __call__(self, host: str, port: int) -> list[str]: ...


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None
    resolved_ip: str | None
    latency_ms: float
    response_head: str | None
    retry_after: str | None


async def check_target(url: str, resolver: Resolver, *, allow_private: bool) -> list[str]:
    """The vetted addresses of ``url``'s host; raises TargetRefused."""
    _, host, port = split_target(url)
    try:
        addresses = await resolver(host, port)
    except OSError as exc:
        raise Unresolvable("the host does not resolve") from exc
    return vet(addresses, allow_private=allow_private)


class Sender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        resolver: Resolver,
        *,
        timeout: float,
        response_limit: int,
        allow_private: bool,
    ) -> None:
        self._session = session
        self._resolver = resolver
        self._timeout = timeout
        self._limit = response_limit
        self._allow_private = allow_private

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-attempt deadline override
    ) -> Outcome:
        started = time.perf_counter()
        ip: str | None = None

        def failed(error: str, status: int | None = None, head: str | None = None) -> Outcome:
            latency = (time.perf_counter() - started) * 1000
            return Outcome(False, status, error, ip, latency, head, None)

        try:
            async with asyncio.timeout(timeout or self._timeout):
                ips = await check_target(url, self._resolver, allow_private=self._allow_private)
                ip = ips[0]
                return await self._send(url, ip, headers, body, started)
        except Unresolvable:
            return failed("dns_error")
        except TargetRefused:
            return failed("refused_target")
        except TimeoutError:
            return failed("timeout")
        except (aiohttp.ClientSSLError, ssl.SSLError):
            return failed("tls_error")
        except (aiohttp.ClientConnectionError, OSError):
            return failed("connect_error")
        except aiohttp.ClientError:
            return failed("invalid_response")

    async def _send(
        self, url: str, ip: str, headers: dict[str, str], body: bytes, started: float
    ) -> Outcome:
        target = URL(url)
        host_header = target.raw_host or ""
        if not target.is_default_port():
            host_header = f"{host_header}:{target.port}"
        pinned = target.with_host(ip)
        sent = {
            **headers,
            "Host": host_header,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        async with self._session.post(
            pinned,
            data=body,
            headers=sent,
            allow_redirects=False,
            server_hostname=target.raw_host if target.scheme == "https" else None,
        ) as resp:
            head = await resp.content.read(self._limit)
            if not resp.content.at_eof():
                resp.close()  # the rest is not wanted; do not keep the connection
            latency = (time.perf_counter() - started) * 1000
            ok = 200 <= resp.status < 300
            return Outcome(
                succeeded=ok,
                status_code=resp.status,
                error=None if ok else f"http_{resp.status}",
                resolved_ip=ip,
                latency_ms=latency,
                # NUL cannot be stored in a Postgres text column: an attempt that failed to be
                # recorded would be sent again at every lease, forever.
                response_head=head[:256].decode("utf-8", "replace").replace("\x00", "\ufffd")
                or None,
                retry_after=resp.headers.get("Retry-After"),
            )
