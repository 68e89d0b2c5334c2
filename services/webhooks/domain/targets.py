"""Which addresses a webhook may be delivered to (SSRF guard; pure functions)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL is not acceptable, or resolves to an address deliveries must not reach."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolvable(TargetRefused):
    """The host name did not resolve (at delivery: a DNS failure, retried like any other)."""


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
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must use http or https")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port


def vet(addresses: list[str], *, allow_private: bool) -> list[str]:
    """The addresses deliveries may connect to; refuses if any of them is forbidden.

    Refusing when *any* address is private (not only all) stops a name that answers with one
    public and one internal address from being used to reach the internal one.
    """
    if not addresses:
        raise TargetRefused("the host does not resolve")
    if allow_private:
        return addresses
    for text in addresses:
        if forbidden(ipaddress.ip_address(text.split("%", 1)[0])):
            raise TargetRefused(f"the host resolves to a non-public address ({text})")
    return addresses
