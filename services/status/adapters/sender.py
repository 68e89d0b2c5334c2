"""One status webhook POST through the shared egress guard (``services.runtime.egress``).

The name is resolved once and vetted (no private or reserved address unless the setting allows
it), and the request goes to the vetted IP itself: a DNS answer that changes between the check
and the connect cannot steer a delivery inside.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiohttp

from services.runtime import egress

USER_AGENT = "ClipMix-Status/1.0"
# A subscribe's name lookup (inside the gateway's 2 s deadline for internal calls).
CHECK_DNS_SECONDS = 1.0
# How much of a receiver's answer is read (and kept as nothing: only its status matters).
_READ_LIMIT = 1024


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: int | None
    error: str | None


class Sender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        lookup: egress.Lookup,
        *,
        timeout: float,
        allow_private: bool,
    ) -> None:
        self._session = session
        self._lookup = lookup
        self._timeout = timeout
        self._allow_private = allow_private

    async def check(self, url: str) -> None:
        """Raises ``egress.TargetRefused`` (with the reason) for a URL we would not POST to.

        The lookup gets ``CHECK_DNS_SECONDS``: a subscribe is answered within the gateway's
        internal deadline (2 s), so a slow name server refuses the URL instead of a 503."""
        await egress.check_url(
            url, self._lookup, allow_private=self._allow_private, timeout=CHECK_DNS_SECONDS
        )

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        """One attempt, bounded by the timeout from resolving to the answer's first bytes."""
        try:
            async with asyncio.timeout(self._timeout):
                ips = await egress.check_url(url, self._lookup, allow_private=self._allow_private)

                async def attempt(ip: str) -> Outcome:
                    return await self._send(url, ip, headers, body)

                return await egress.each_address(ips, attempt)
        except egress.Unresolvable:
            return Outcome(False, None, "dns_error")
        except egress.TargetRefused:
            return Outcome(False, None, "refused_target")
        except TimeoutError:
            return Outcome(False, None, "timeout")
        except (aiohttp.ClientSSLError, ssl.SSLError):
            return Outcome(False, None, "tls_error")
        except (aiohttp.ClientError, OSError):
            return Outcome(False, None, "connect_error")

    async def _send(self, url: str, ip: str, headers: dict[str, str], body: bytes) -> Outcome:
        pinned = egress.pin(url, ip)
        sent = {
            **headers,
            "Host": pinned.host,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        async with self._session.post(
            pinned.url,
            data=body,
            headers=sent,
            allow_redirects=False,
            server_hostname=pinned.server_hostname,
        ) as resp:
            await resp.content.read(_READ_LIMIT)
            ok = 200 <= resp.status < 300
            return Outcome(ok, resp.status, None if ok else f"http_{resp.status}")
