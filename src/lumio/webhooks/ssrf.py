"""Where a webhook may be sent: public addresses over HTTPS, unless LUMIO_WEBHOOK_ALLOW_PRIVATE.

The host is resolved at create and again at every send, and the request goes to the address
that was checked (the Host header and TLS SNI keep the name): a name that re-resolves to a
private address between the check and the connect (DNS rebinding) never gets a request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from lumio.kit.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(BadRequest):
    pass


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send: ``url`` as the user gave it, connected to ``address`` (checked; None when
    private addresses are allowed and the name is resolved at connect) with ``host`` for Host
    and SNI."""

    url: httpx.URL
    host: str
    # The Host header: the name (and port) the user gave.
    netloc: str
    address: str | None = None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The host's addresses (tests replace this to fake a name that resolves privately)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"the webhook host {host!r} does not resolve") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # is_global is false for loopback, private, link-local (169.254.169.254, the cloud metadata
    # address), shared, reserved and unspecified ranges.
    return address.is_global and not address.is_multicast


def parse(url: str, allow_private: bool) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsafeUrl(f"not a URL: {url!r}") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in allowed:
        raise UnsafeUrl("a webhook URL must use https://")
    if not parsed.host:
        raise UnsafeUrl("a webhook URL needs a host")
    if parsed.userinfo:
        raise UnsafeUrl("a webhook URL may not carry a user name or password")
    return parsed


async def check(url: str, allow_private: bool) -> Target:
    """The target to send to, or UnsafeUrl (a 400 at create; a failed attempt at send)."""
    parsed = parse(url, allow_private)
    if allow_private:
        return Target(parsed, parsed.host, parsed.netloc.decode())
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(parsed.host, port)
    refused = [a for a in addresses if not is_public(a)]
    if refused or not addresses:
        raise UnsafeUrl(
            f"the webhook host {parsed.host!r} resolves to a non-public address "
            f"({refused[0] if refused else 'none'}); refused"
        )
    return Target(parsed, parsed.host, parsed.netloc.decode(), str(addresses[0]))
