"""One guard for every server-side fetch of a URL a customer gave us (SSRF).

Webhook deliveries and the gateway's media probe both go through it:

1. ``split_target`` accepts only ``http(s)`` URLs with a host and without credentials;
2. ``resolve`` looks the name up **once**, under its own deadline, and ``vet`` refuses the
   answer if any address is not globally routable (private, loopback, link-local, CGNAT,
   multicast, reserved, site-local, or an IPv4 address of those kinds carried inside an IPv6
   one: mapped, NAT64, IPv4-compatible, 6to4, Teredo);
3. ``pin`` rewrites the request to the vetted address itself (the original ``Host`` header and
   TLS server name kept), so the HTTP client never resolves the name again and a DNS answer
   that changes between the check and the connect (DNS rebinding) cannot reach an internal
   address.

``AsyncLookup`` resolves with c-ares on the event loop instead of ``getaddrinfo`` in the
default thread pool: a slow name server then costs one pending query, never one of the few
executor threads every other lookup of the process needs. "Allow private targets" is a
development setting of each caller; with it the name is still resolved once and pinned.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import aiodns
import aiohttp
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

# A lookup's own deadline, well inside any caller's: a name server that never answers fails
# the lookup, not the whole attempt.
DNS_TIMEOUT_SECONDS = 2.0


class TargetRefused(Exception):
    """The URL is not acceptable, or resolves to an address we must not reach."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolvable(TargetRefused):
    """The host name did not resolve (in time); for a delivery, a DNS failure retried later."""


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (well-known and
# local-use) and the deprecated IPv4-compatible form. On a network with NAT64 they reach IPv4.
_EMBEDS_IPV4 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)


def forbidden(ip: IPAddress) -> bool:
    """Anything not globally routable: private, loopback, link-local (cloud metadata at
    169.254.169.254 is link-local), CGNAT, multicast, reserved, unspecified — including an IPv4
    address of those kinds carried inside an IPv6 one (mapped, NAT64, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in net for net in _EMBEDS_IPV4):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and forbidden(embedded):
            return True
        if ip.is_site_local:
            return True
    return not ip.is_global or ip.is_multicast


def split_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port out of range or not a number
        raise TargetRefused("the URL is not valid") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must use http or https")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def vet(addresses: list[str], *, allow_private: bool) -> list[str]:
    """The addresses we may connect to; refuses if any of them is forbidden.

    Refusing when *any* address is private (not only all) stops a name that answers with one
    public and one internal address from being used to reach the internal one.
    """
    if not addresses:
        raise Unresolvable("the host does not resolve")
    if allow_private:
        return addresses
    for text in addresses:
        if forbidden(ipaddress.ip_address(text.split("%", 1)[0])):
            raise TargetRefused(f"the host resolves to a private or reserved address ({text})")
    return addresses


class Lookup(Protocol):
    """Resolves a host name to its addresses (text), in the order to try them."""

    async def __call__(self, host: str, port: int) -> list[str]: ...


class AsyncLookup:
    """c-ares on the event loop; create it inside the running loop, ``close()`` it at the end."""

    def __init__(self, timeout: float = DNS_TIMEOUT_SECONDS) -> None:
        # One try per name server; the whole lookup is bounded again by ``resolve``.
        self._resolver = aiodns.DNSResolver(timeout=timeout, tries=1)

    async def __call__(self, host: str, port: int) -> list[str]:
        try:
            found = await self._resolver.getaddrinfo(
                host, port=port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except aiodns.error.DNSError as exc:
            raise OSError(f"cannot resolve {host!r}: {exc.args[-1]}") from exc
        return _unique(node.addr[0].decode() for node in found.nodes)

    async def close(self) -> None:
        await self._resolver.close()


async def system_lookup(host: str, port: int) -> list[str]:
    """The operating system's resolver (a thread of the default pool): for one-off commands."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return _unique(str(info[4][0]) for info in infos)


def _unique(addresses: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    return seen


async def resolve(
    host: str,
    port: int,
    lookup: Lookup,
    *,
    allow_private: bool,
    timeout: float = DNS_TIMEOUT_SECONDS,  # noqa: ASYNC109 - the lookup's own deadline
) -> list[str]:
    """The vetted addresses of ``host``, looked up once; raises TargetRefused/Unresolvable."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        return vet([str(literal)], allow_private=allow_private)
    try:
        async with asyncio.timeout(timeout):
            addresses = await lookup(host, port)
    except TimeoutError as exc:
        raise Unresolvable("the host did not resolve in time") from exc
    except OSError as exc:
        raise Unresolvable("the host does not resolve") from exc
    return vet(addresses, allow_private=allow_private)


async def check_url(
    url: str,
    lookup: Lookup,
    *,
    allow_private: bool,
    timeout: float = DNS_TIMEOUT_SECONDS,  # noqa: ASYNC109 - the lookup's own deadline
) -> list[str]:
    """The vetted addresses of ``url``'s host; raises TargetRefused."""
    _, host, port = split_target(url)
    return await resolve(host, port, lookup, allow_private=allow_private, timeout=timeout)


@dataclass(frozen=True)
class Pinned:
    """A request rewritten to one vetted address: pass ``url``, ``host`` as the ``Host`` header
    and ``server_hostname`` (TLS SNI and certificate check) to aiohttp."""

    url: URL
    host: str
    server_hostname: str | None


async def each_address(addresses: list[str], attempt: Callable[[str], Awaitable[T]]) -> T:
    """``attempt(ip)`` on the vetted addresses in order until one connects: a name with an IPv6
    and an IPv4 address still works where only one of them is reachable. Only a failure to
    connect moves on; anything after the connection (an answer, a timeout) is the outcome."""
    for ip in addresses[:-1]:
        try:
            return await attempt(ip)
        except aiohttp.ClientConnectorError:
            continue
    return await attempt(addresses[-1])


def pin(url: str, ip: str) -> Pinned:
    target = URL(url)
    host = target.raw_host or ""
    if not target.is_default_port():
        host = f"{host}:{target.port}"
    return Pinned(
        url=target.with_host(ip),
        host=host,
        server_hostname=target.raw_host if target.scheme == "https" else None,
    )
