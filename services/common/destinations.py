"""Where webhooks may go: SSRF protection for tenant-supplied URLs.

A webhook or Slack URL must be http(s). Its host is refused when it is (or
resolves to) a loopback, link-local, private, multicast, reserved or
unspecified address, unless the allow-list setting (ONCALL_ALLOWED_DESTINATIONS
for on-call's webhooks, ANOMALY_ALLOWED_SOURCES for nself-anomaly's Prometheus
sources) lists the host name or a CIDR containing the address. Local mode
(`nsentry up`) also allows loopback.
Public addresses are always allowed: the list names exceptions to the refusal.

Two checks, one rule:

* :meth:`DestinationPolicy.literal_problem` when a contact method is saved: the
  host as written. Every numeric form of an address is read as the address it
  is (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518``,
  ``0x7f.1``, full-width digits, ``[::ffff:127.0.0.1]``), as resolvers and
  browsers read them, and :meth:`DestinationPolicy.canonical_url` rewrites such
  a host to its canonical text before the URL is stored. A host whose last
  label is a number but that is no IPv4 address is refused (WHATWG URL rules).
* :meth:`DestinationPolicy.check` before every delivery: the name is resolved
  **once** (through the policy's resolver: ``getaddrinfo`` by default, a
  parameter so tests can control the answers), every address of the answer is
  judged, and the answer is returned as a :class:`Checked` destination. The
  sender dials exactly those addresses (see ``http.Connections``) and never
  resolves the name again, so a name that answers a public address to the
  check and a private one to the connect (DNS rebinding) reaches only the
  public one. The Host header and TLS (SNI and certificate verification) keep
  the name. :class:`PinnedBackend` is the httpcore network backend that dials
  them (on-call's ``delivery/http.Connections``, nself-anomaly's Prometheus
  client).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
MAX_URL = 2048
RESOLVE_SECONDS = 10.0
_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ENDS_IN_NUMBER = re.compile(r"^([0-9]+|0x[0-9a-f]*)$")

# (host, port) -> the addresses the host resolves to, as text
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (``getaddrinfo``), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Refused(Exception):
    """The destination may not (or cannot now) be called; `transient` if it may later."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Checked:
    """A destination that passed the check: the URL to request (its host in canonical
    form) and the addresses, all judged, to connect to (in the resolver's order)."""

    url: str
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Host:
    """A URL's host: its ASCII form (IDNA, lower case, no trailing dot) and, when the
    host is a numeric address in any form, that address."""

    ascii: str
    address: IPAddress | None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address an ASCII host denotes (WHATWG / ``inet_aton`` forms: one to four
    parts, each decimal, ``0x`` hex or ``0``-led octal, the last filling the remaining
    bytes), None for a name; ValueError for a host that ends in a number but is no
    address (``1.2.3.256``, ``0x1g.1``)."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or not _ENDS_IN_NUMBER.match(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError("is not a valid IPv4 address")
    numbers = []
    for part in parts:
        value = _number(part)
        if value is None:
            raise ValueError("is not a valid IPv4 address")
        numbers.append(value)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int | None:
    try:
        if part[:2].lower() == "0x":
            digits = part[2:]
            return int(digits, 16) if digits else 0
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10) if part.isascii() and part.isdigit() else None
    except ValueError:
        return None


def parse_host(hostname: str) -> _Host:
    """The host of a URL (as `urlsplit(...).hostname` gives it) read as a resolver and a
    browser would; ValueError with the reason when it is not a usable host."""
    if ":" in hostname:  # an IPv6 literal (urlsplit took the brackets off)
        try:
            address = ipaddress.IPv6Address(hostname)
        except ValueError:
            raise ValueError("is not a valid IPv6 address") from None
        mapped = address.ipv4_mapped
        text = f"::ffff:{mapped}" if mapped is not None else address.compressed
        return _Host(f"[{text}]", address)
    try:
        # IDNA (2003, as the HTTP client encodes it): also maps full-width digits and dots
        ascii_host = hostname.rstrip(".").encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        raise ValueError("is not a valid host name") from None
    if not ascii_host:
        raise ValueError("must name a host")
    address = parse_ipv4(ascii_host)
    if address is not None:
        return _Host(str(address), address)
    if not _NAME.match(ascii_host):
        raise ValueError("is not a valid host name")
    return _Host(ascii_host, None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to a v4 host (mapped, 6to4, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class DestinationPolicy:
    """The allow-list and mode that decide which hosts outgoing requests may reach, and
    the resolver delivery asks (once per delivery) for the addresses of a name."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    allow_loopback: bool = False
    resolver: Resolver = system_resolver
    resolve_seconds: float = RESOLVE_SECONDS
    setting: str = "ONCALL_ALLOWED_DESTINATIONS"  # the allow-list a refusal points to

    @classmethod
    def from_settings(
        cls,
        allowed: list[str],
        *,
        local_mode: bool,
        resolver: Resolver = system_resolver,
        setting: str = "ONCALL_ALLOWED_DESTINATIONS",
    ) -> DestinationPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in allowed:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), local_mode, resolver, setting=setting)

    def address_allowed(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id is not None:
                address = ipaddress.IPv6Address(address.compressed.split("%")[0])
            if address.ipv4_mapped is not None:
                address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None and not self.address_allowed(embedded):
                return False
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

    def _parse(self, url: str) -> tuple[SplitResult, _Host]:
        """The URL's parts and host; Refused when it can never be called as written."""
        if len(url) > MAX_URL:
            raise Refused(f"must be at most {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError:
            raise Refused("is not a valid URL") from None
        if parts.scheme not in ("http", "https"):
            raise Refused("must be an http or https URL")
        if not parts.hostname:
            raise Refused("must name a host")
        if parts.username or parts.password:
            raise Refused("must not carry credentials")
        try:
            host = parse_host(parts.hostname)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        if host.ascii in self.hosts:
            return parts, host
        if host.ascii in LOOPBACK_NAMES and not self.allow_loopback:
            raise Refused(_refused(host.ascii, self.setting))
        if host.address is not None and not self.address_allowed(host.address):
            raise Refused(_refused(host.ascii, self.setting))
        return parts, host

    def literal_problem(self, url: str) -> str | None:
        """Why `url` can never be called (as written, numeric hosts read as addresses),
        or None."""
        try:
            self._parse(url)
        except Refused as refused:
            return refused.reason
        return None

    def canonical_url(self, url: str) -> str:
        """`url` with a numeric host in canonical form (``http://0x7f.1:8/x`` is
        ``http://127.0.0.1:8/x``); other URLs unchanged. For a URL that passed
        :meth:`literal_problem`."""
        parts, host = self._parse(url)
        if host.address is None or parts.hostname == host.ascii.strip("[]"):
            return url
        netloc = host.ascii if parts.port is None else f"{host.ascii}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def check(self, url: str) -> Checked:
        """Resolve `url`'s host once and judge every address: the destination to send to,
        pinned to those addresses; Refused (transient when the resolver failed for now)."""
        parts, host = self._parse(url)
        canonical = self.canonical_url(url)
        if host.address is not None:
            return Checked(canonical, (_text(host.address),))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self.resolve_seconds):
                answer = list(await self.resolver(host.ascii, port))
        except TimeoutError:
            raise Refused(f"cannot resolve {host.ascii!r}: timed out", transient=True) from None
        except OSError as exc:
            transient = isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
            reason = f"cannot resolve {host.ascii!r}: {exc.strerror or exc}"
            raise Refused(reason, transient=transient) from None
        addresses: list[str] = []
        for text in answer:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise Refused(f"cannot resolve {host.ascii!r}: bad answer {text!r}") from None
            if host.ascii not in self.hosts and not self.address_allowed(address):
                raise Refused(_refused(f"{host.ascii} ({address})", self.setting))
            if _text(address) not in addresses:
                addresses.append(_text(address))
        if not addresses:
            raise Refused(f"cannot resolve {host.ascii!r}: no address", transient=True)
        return Checked(canonical, tuple(addresses))

    async def resolved_problem(self, url: str) -> str | None:
        """Why `url` may not be called now (after resolving its host), or None."""
        try:
            await self.check(url)
        except Refused as refused:
            return refused.reason
        return None


def _text(address: IPAddress) -> str:
    return address.compressed


def _refused(host: str, setting: str) -> str:
    return (
        f"destination {host} is a loopback, link-local or private address; "
        f"list it in {setting} to allow it"
    )


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that dials the given addresses instead of resolving the host.

    httpcore asks it to connect to the origin's host; it connects to the first of
    `addresses` that accepts (the connect timeout shared between them) and ignores
    the host, so no second name lookup can change where the request goes. TLS then
    runs over that stream with the origin's host as SNI and verified name.
    """

    def __init__(
        self, addresses: Sequence[str], inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        if not addresses:
            raise ValueError("no address to connect to")
        self.addresses = tuple(addresses)
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        del host  # the name was resolved (once) and judged before: dial what was judged
        deadline = None if timeout is None else time.monotonic() + timeout
        options = list(socket_options) if socket_options is not None else None
        failure: Exception | None = None
        for i, address in enumerate(self.addresses):
            budget = None
            if deadline is not None:  # what is left, shared with the addresses after this
                budget = max(0.0, deadline - time.monotonic()) / (len(self.addresses) - i)
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=budget,
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("checked destinations are not reached over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
