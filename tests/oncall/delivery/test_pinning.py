"""Delivery connects to the address the destination check judged, never to a second answer.

Real HTTP(S) servers on loopback addresses are the sinks; the only thing the tests
control is the name resolution (a resolver handed to the policy, or the system's
`getaddrinfo` answering for one test name), as a rebinding DNS server would.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
import pytest

from services.common.destinations import DestinationPolicy, PinnedBackend
from services.oncall.delivery.channels import Message, Result, WebhookChannel
from services.oncall.delivery.http import Connections
from tests.oncall.helpers import METHOD_SECRET, read_request
from tests.oncall.tls import tls_contexts


@dataclass
class Sink:
    """A real HTTP/1.1 server on one address: records each request's line and headers
    (and the TLS server name the client asked for)."""

    host: str
    port: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line, headers, _body = await read_request(reader)
                self.requests.append((request_line, headers))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def sink_on(
    host: str, port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Sink]:
    sink = Sink(host)
    if tls is not None:

        def remember(_sock: Any, name: str | None, _ctx: ssl.SSLContext) -> None:
            sink.server_names.append(name)

        tls.sni_callback = remember
    listener = await asyncio.start_server(sink.handle, host, port, ssl=tls)
    sink.port = listener.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        listener.close()
        await listener.wait_closed()


class Rebinding:
    """A resolver the test controls: each lookup of a name gets the next scripted answer
    (the last one repeats), as a rebinding DNS server with a zero TTL would answer."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def answer(self, host: str) -> list[str] | None:
        script = self.answers.get(host)
        if script is None:
            return None
        self.lookups.append(host)
        return script.pop(0) if len(script) > 1 else script[0]

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        found = self.answer(host)
        if found is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found


def message(url: str) -> Message:
    return Message(
        "n1", "key-1", "webhook", url, {"alert": {"id": "a1"}}, 1, signing_secret=METHOD_SECRET
    )


async def send(policy: DestinationPolicy, url: str, **connections: Any) -> Result:
    client = Connections(timeout=2.0, **connections)
    try:
        channel = WebhookChannel(client, destinations=policy, signing_secret=None)
        return await channel.send(message(url))
    finally:
        await client.aclose()


async def test_a_rebinding_name_reaches_only_the_checked_address() -> None:
    """The name answers an allowed address to the check and 127.0.0.1 afterwards: the
    request goes to the allowed address (Host kept), the loopback sink gets nothing."""
    async with sink_on("127.0.0.2") as allowed, sink_on("127.0.0.1", allowed.port) as internal:
        resolver = Rebinding({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
        # only 127.0.0.2 is allowed (it stands for a public address); no loopback mode
        policy = DestinationPolicy.from_settings(
            ["127.0.0.2/32"], local_mode=False, resolver=resolver
        )
        url = f"http://rebind.test:{allowed.port}/hook"
        first = await send(policy, url)
        assert first.outcome == "sent", first
        assert resolver.lookups == ["rebind.test"]  # resolved once: the dial did not ask
        assert internal.requests == []
        [(line, headers)] = allowed.requests
        assert line == "POST /hook HTTP/1.1"
        assert headers["host"] == f"rebind.test:{allowed.port}"

        # the next delivery resolves again, gets 127.0.0.1, and is refused before any dial
        second = await send(policy, url)
        assert second.outcome == "permanent"
        assert "rebind.test (127.0.0.1)" in (second.error or "")
        assert "ONCALL_ALLOWED_DESTINATIONS" in (second.error or "")
        assert internal.requests == [] and len(allowed.requests) == 1


async def test_an_answer_with_any_refused_address_is_refused() -> None:
    async with sink_on("127.0.0.1") as internal:
        resolver = Rebinding({"mixed.test": [["93.184.216.34", "127.0.0.1"]]})
        policy = DestinationPolicy.from_settings([], local_mode=False, resolver=resolver)
        result = await send(policy, f"http://mixed.test:{internal.port}/")
    assert result.outcome == "permanent" and "127.0.0.1" in (result.error or "")
    assert internal.requests == []


async def test_the_system_resolver_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production path (`getaddrinfo`, no resolver given): the operating system's
    answer changes between lookups; only the first is used, to check and to connect."""
    async with sink_on("127.0.0.2") as allowed, sink_on("127.0.0.1", allowed.port) as internal:
        script = Rebinding({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            found = script.answer(host.decode() if isinstance(host, bytes) else host)
            if found is None:
                return real(host, port, *args, **kwargs)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))
                for address in found
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        policy = DestinationPolicy.from_settings(["127.0.0.2/32"], local_mode=False)
        result = await send(policy, f"http://rebind.test:{allowed.port}/hook")
    assert result.outcome == "sent", result
    assert internal.requests == [] and len(allowed.requests) == 1  # old code: delivered there
    assert script.lookups == ["rebind.test"]
    assert allowed.requests[0][1]["host"] == f"rebind.test:{allowed.port}"


async def test_an_allowed_name_is_delivered_with_its_host_header() -> None:
    async with sink_on("127.0.0.1") as sink:
        resolver = Rebinding({"hooks.test": [["127.0.0.1"]]})
        policy = DestinationPolicy.from_settings(["127.0.0.1"], local_mode=False, resolver=resolver)
        for _ in range(2):
            result = await send(policy, f"http://Hooks.Test:{sink.port}/in?x=1")
            assert result.outcome == "sent", result
    assert [line for line, _ in sink.requests] == ["POST /in?x=1 HTTP/1.1"] * 2
    assert {headers["host"] for _, headers in sink.requests} == {f"hooks.test:{sink.port}"}
    assert resolver.lookups == ["hooks.test", "hooks.test"]  # once per delivery


async def test_the_next_checked_address_is_tried_when_one_refuses() -> None:
    async with sink_on("127.0.0.1") as sink:
        # nothing listens on 127.0.0.3 at that port: connection refused, then the next
        resolver = Rebinding({"two.test": [["127.0.0.3", "127.0.0.1"]]})
        policy = DestinationPolicy.from_settings(
            ["127.0.0.0/8"], local_mode=False, resolver=resolver
        )
        result = await send(policy, f"http://two.test:{sink.port}/")
    assert result.outcome == "sent", result
    assert len(sink.requests) == 1 and resolver.lookups == ["two.test"]


async def test_a_pinned_connection_is_reused_only_for_the_same_addresses() -> None:
    async with sink_on("127.0.0.1") as one, sink_on("127.0.0.2", one.port) as two:
        connections = Connections(timeout=2.0)
        url = f"http://pinned.test:{one.port}/"
        try:
            for addresses in (["127.0.0.1"], ["127.0.0.1"], ["127.0.0.2"], ["127.0.0.1"]):
                answer = await connections.post(url, b"x", {}, addresses=addresses)
                assert answer.status_code == 200
        finally:
            await connections.aclose()
    assert len(one.requests) == 3 and len(two.requests) == 1
    assert {h["host"] for _, h in one.requests + two.requests} == {f"pinned.test:{one.port}"}


# ---------------------------------------------------------------------------
# TLS: the dial is pinned, the name is still the one TLS verifies
# ---------------------------------------------------------------------------
async def test_tls_keeps_the_name_for_sni_and_certificate_checks(tmp_path: Path) -> None:
    server_tls, client_tls = tls_contexts(tmp_path, "hooks.test")
    resolver = Rebinding({"hooks.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    policy = DestinationPolicy.from_settings(["127.0.0.1"], local_mode=False, resolver=resolver)
    async with sink_on("127.0.0.1", tls=server_tls) as sink:
        sent = await send(policy, f"https://hooks.test:{sink.port}/tls", ssl_context=client_tls)
        assert sent.outcome == "sent", sent
        assert sink.server_names == ["hooks.test"]  # SNI: the name, not the dialled address
        [(line, headers)] = sink.requests
        assert line == "POST /tls HTTP/1.1" and headers["host"] == f"hooks.test:{sink.port}"

        # the same server and address under a name its certificate does not carry: the
        # certificate is verified against the name in the URL, so the handshake fails
        wrong = await send(policy, f"https://other.test:{sink.port}/tls", ssl_context=client_tls)
        assert wrong.outcome == "retry" and "ConnectError" in (wrong.error or "")
        assert "hostname" in (wrong.error or "").lower() or "certificate" in (wrong.error or "")
        # and the address itself is not a name the certificate carries either
        connections = Connections(timeout=2.0, ssl_context=client_tls)
        try:
            with pytest.raises(httpcore.ConnectError):
                await connections.post(
                    f"https://127.0.0.1:{sink.port}/tls", b"x", {}, addresses=["127.0.0.1"]
                )
        finally:
            await connections.aclose()
    assert len(sink.requests) == 1


async def test_the_pinned_backend_ignores_the_host_it_is_asked_for() -> None:
    async with sink_on("127.0.0.1") as sink:
        backend = PinnedBackend(["127.0.0.1"])
        stream = await backend.connect_tcp("no-such-host.invalid", sink.port, timeout=2.0)
        try:
            await stream.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert (await stream.read(100)).startswith(b"HTTP/1.1 200")
        finally:
            await stream.aclose()
    with pytest.raises(ValueError):
        PinnedBackend([])
