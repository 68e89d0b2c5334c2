"""The outgoing POST: resolve once, vet the addresses, connect to a vetted one, read a little.

The SSRF guard is the shared one (``services.runtime.egress``): the name is resolved here,
under its own deadline, and the request is made to the vetted IP itself (with the original
Host header and TLS server name), so a DNS answer that changes between the check and the
connect (DNS rebinding) cannot steer a delivery to an internal address.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import aiohttp

from services.runtime import egress
from services.runtime.egress import Lookup, TargetRefused, Unresolvable, system_lookup

USER_AGENT = "ClipMix-Webhooks/1.0 (+https://clipmix.example/docs/webhooks)"

# The lookup function deliveries use (kept under its old name for callers and tests).
Resolver = Lookup
system_resolver = system_lookup


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None
    resolved_ip: str | None
    latency_ms: float
    response_head: str | None
    retry_after: str | None
    # The headers as they went out (what the client added too), for the delivery log; None
    # when nothing was sent.
    request_headers: dict[str, str] | None = None


async def check_target(
    url: str,
    resolver: Resolver,
    *,
    allow_private: bool,
    timeout: float = egress.DNS_TIMEOUT_SECONDS,  # noqa: ASYNC109 - the lookup's deadline
) -> list[str]:
    """The vetted addresses of ``url``'s host; raises TargetRefused."""
    return await egress.check_url(url, resolver, allow_private=allow_private, timeout=timeout)


class Sender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        resolver: Resolver,
        *,
        timeout: float,
        response_limit: int,
        allow_private: bool,
        dns_timeout: float = egress.DNS_TIMEOUT_SECONDS,
    ) -> None:
        self._session = session
        self._resolver = resolver
        self._timeout = timeout
        self._limit = response_limit
        self._allow_private = allow_private
        self._dns_timeout = dns_timeout

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-attempt deadline override
    ) -> Outcome:
        """One attempt. The deadline starts here: the caller holds its slot (and so a free
        connection of a connector sized for every slot) before calling."""
        started = time.perf_counter()
        ip: str | None = None

        def failed(error: str, status: int | None = None, head: str | None = None) -> Outcome:
            latency = (time.perf_counter() - started) * 1000
            # Once an address was tried, the request may have reached the receiver.
            sent = None if ip is None else self._headers(headers, egress.pin(url, ip).host)
            return Outcome(False, status, error, ip, latency, head, None, sent)

        deadline = timeout or self._timeout
        try:
            async with asyncio.timeout(deadline):
                ips = await check_target(
                    url,
                    self._resolver,
                    allow_private=self._allow_private,
                    timeout=min(self._dns_timeout, deadline),
                )

                async def attempt(address: str) -> Outcome:
                    nonlocal ip
                    ip = address
                    return await self._send(url, address, headers, body, started)

                return await egress.each_address(ips, attempt)
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

    @staticmethod
    def _headers(headers: dict[str, str], host: str) -> dict[str, str]:
        return {
            **headers,
            "Host": host,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }

    async def _send(
        self, url: str, ip: str, headers: dict[str, str], body: bytes, started: float
    ) -> Outcome:
        pinned = egress.pin(url, ip)
        sent = self._headers(headers, pinned.host)
        async with self._session.post(
            pinned.url,
            data=body,
            headers=sent,
            allow_redirects=False,
            server_hostname=pinned.server_hostname,
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
                # What the client wrote, its own headers (Content-Length, Accept…) included.
                request_headers={str(k): v for k, v in resp.request_info.headers.items()},
            )
