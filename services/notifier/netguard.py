"""Outbound requests may not reach loopback, private or link-local addresses unless the installation says so.

Names are checked where they are resolved (a resolver of our own on the connector), so a DNS answer or
a redirect cannot slip past; addresses written literally in a URL are checked before the request.
Redirects are not followed by any channel.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class PrivateAddressRefused(Exception):
    pass


def is_private(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified)


def check_url(url: str, allow_private: bool) -> None:
    host = urlsplit(url).hostname or ""
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost") or is_private(host):
        raise PrivateAddressRefused(
            f"refusing to connect to private address {host} (security.allow_private_networks is false)")


class GuardedResolver(AbstractResolver):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self.allow_private:
            return results
        public = [r for r in results if not is_private(r["host"])]
        if not public:
            raise PrivateAddressRefused(
                f"refusing to connect to {host}: it resolves to a private address "
                "(security.allow_private_networks is false)")
        return public

    async def close(self) -> None:
        await self._inner.close()
