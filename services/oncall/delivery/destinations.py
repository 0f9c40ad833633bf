"""Where webhooks may go: SSRF protection for tenant-supplied URLs.

A webhook or Slack URL must be http(s). Its host is refused when it is (or
resolves to) a loopback, link-local, private, multicast, reserved or
unspecified address, unless ONCALL_ALLOWED_DESTINATIONS lists the host name or
a CIDR containing the address. Local mode (`nsentry up`) also allows loopback.
Public addresses are always allowed: the list names exceptions to the refusal.

`literal_problem` is the cheap check done when a contact method is saved (the
host as written); `resolved_problem` is done before every delivery, on every
address the name resolves to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
MAX_URL = 2048


@dataclass(frozen=True)
class DestinationPolicy:
    """The allow-list and mode that decide which hosts outgoing requests may reach."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    allow_loopback: bool = False
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_settings(cls, allowed: list[str], *, local_mode: bool) -> DestinationPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in allowed:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), local_mode)

    def address_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        if address.is_loopback:
            return self.allow_loopback
        return not (
            address.is_private
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
            or not address.is_global
        )

    def literal_problem(self, url: str) -> str | None:
        """Why `url` can never be called (as written), or None."""
        if len(url) > MAX_URL:
            return f"must be at most {MAX_URL} characters"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "is not a valid URL"
        del port
        if parts.scheme not in ("http", "https"):
            return "must be an http or https URL"
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return "must name a host"
        if parts.username or parts.password:
            return "must not carry credentials"
        if host in self.hosts:
            return None
        if host in LOOPBACK_NAMES:
            return None if self.allow_loopback else _refused(host)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None  # a name: checked on its resolved addresses before each delivery
        return None if self.address_allowed(address) else _refused(host)

    async def resolved_problem(self, url: str) -> str | None:
        """Why `url` may not be called now (after resolving its host), or None."""
        problem = self.literal_problem(url)
        if problem is not None:
            return problem
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if host in self.hosts:
            return None
        try:
            ipaddress.ip_address(host)
            return None  # a literal address already passed
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host,
                parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except OSError as exc:
            return f"cannot resolve {host!r}: {exc.strerror or exc}"
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if not self.address_allowed(address):
                return _refused(f"{host} ({address})")
        return None


def _refused(host: str) -> str:
    return (
        f"destination {host} is a loopback, link-local or private address; "
        "list it in ONCALL_ALLOWED_DESTINATIONS to allow it"
    )
