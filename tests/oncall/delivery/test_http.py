"""The webhook connections: keep-alive reuse, a server that closed an idle connection,
bounded answers, TLS, URLs. Real sockets on the loopback, nothing mocked."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore
import pytest

from services.common.destinations import DestinationPolicy
from services.oncall.delivery.channels import Message, WebhookChannel
from services.oncall.delivery.http import Connections, InvalidURL, _split
from tests.oncall.helpers import METHOD_SECRET, read_request
from tests.oncall.tls import tls_contexts

Handler = Callable[[int, int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """Counts connections and requests; `handler(connection_no, request_no, ...)` answers
    and says whether to keep the connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[int, str, dict[str, str], bytes]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        served = 0
        try:
            while True:
                line, headers, body = await read_request(reader)
                self.requests.append((number, line, headers, body))
                served += 1
                if not await self.handler(number, served, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@asynccontextmanager
async def serving(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[Server, int]]:
    server = Server(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    try:
        yield server, listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await listener.wait_closed()


async def keep_alive(_conn: int, _req: int, _r: asyncio.StreamReader, w: asyncio.StreamWriter):
    w.write(ok(b'{"ok":true}'))
    await w.drain()
    return True


async def test_connections_are_kept_alive_and_reused() -> None:
    async with serving(keep_alive) as (server, port):
        connections = Connections()
        try:
            for i in range(5):
                answer = await connections.post(
                    f"http://127.0.0.1:{port}/hook?n={i}", b"{}", {"X-Test": "1"}
                )
                assert answer.status_code == 200
        finally:
            await connections.aclose()
    assert server.connections == 1 and len(server.requests) == 5
    _, line, headers, body = server.requests[-1]
    assert line == "POST /hook?n=4 HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}" and headers["x-test"] == "1"
    assert headers["content-length"] == "2" and body == b"{}"


async def test_concurrent_posts_use_one_connection_each() -> None:
    async def slow(_c: int, _q: int, _r: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        w.write(ok())
        await w.drain()
        return True

    async with serving(slow) as (server, port):
        connections = Connections()
        try:
            url = f"http://127.0.0.1:{port}/"
            answers = await asyncio.gather(*(connections.post(url, b"x", {}) for _ in range(4)))
            assert [a.status_code for a in answers] == [200] * 4
            await asyncio.gather(*(connections.post(url, b"x", {}) for _ in range(4)))
        finally:
            await connections.aclose()
    assert server.connections == 4 and len(server.requests) == 8


async def test_an_idle_connection_closed_by_the_server_is_retried_on_a_new_one() -> None:
    async def first_only(_c: int, request: int, _r: asyncio.StreamReader, w) -> bool:
        if request > 1:  # read the next request, then hang up without answering
            return False
        w.write(ok())
        await w.drain()
        return True

    async with serving(first_only) as (server, port):
        connections = Connections()
        try:
            url = f"http://127.0.0.1:{port}/"
            assert (await connections.post(url, b"one", {"Idempotency-Key": "k1"})).status_code
            answer = await connections.post(url, b"two", {"Idempotency-Key": "k2"})
            assert answer.status_code == 200
        finally:
            await connections.aclose()
    # the second request went out twice, with the same body and key: at least once
    sent = [(n, body) for n, _, _, body in server.requests]
    assert sent == [(1, b"one"), (1, b"two"), (2, b"two")]
    assert server.requests[1][2]["idempotency-key"] == server.requests[2][2]["idempotency-key"]


async def test_a_fresh_connection_that_fails_is_not_retried() -> None:
    async def hang_up(_c: int, _q: int, _r: asyncio.StreamReader, _w) -> bool:
        return False

    async with serving(hang_up) as (server, port):
        connections = Connections()
        try:
            with pytest.raises(httpcore.RemoteProtocolError):
                await connections.post(f"http://127.0.0.1:{port}/", b"x", {})
        finally:
            await connections.aclose()
    assert len(server.requests) == 1


async def test_a_large_answer_is_not_read_whole_and_its_connection_not_kept() -> None:
    big = b"x" * (1 << 20)

    async def large(connection: int, _q: int, _r: asyncio.StreamReader, w) -> bool:
        w.write(ok(big if connection == 1 else b""))
        await w.drain()  # the client hanging up early ends this connection (ConnectionError)
        return True

    async with serving(large) as (server, port):
        connections = Connections()
        try:
            url = f"http://127.0.0.1:{port}/"
            assert (await connections.post(url, b"x", {})).status_code == 200
            assert (await connections.post(url, b"x", {})).status_code == 200
        finally:
            await connections.aclose()
    assert server.connections == 2


async def test_chunked_answers_keep_the_connection() -> None:
    async def chunked(_c: int, _q: int, _r: asyncio.StreamReader, w) -> bool:
        w.write(
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n"
        )
        await w.drain()
        return True

    async with serving(chunked) as (server, port):
        connections = Connections()
        try:
            for _ in range(2):
                answer = await connections.post(f"http://127.0.0.1:{port}/", b"x", {})
                assert answer.status_code == 429 and answer.headers["retry-after"] == "3"
        finally:
            await connections.aclose()
    assert server.connections == 1


async def test_https_verifies_the_certificate_and_the_name(tmp_path: Path) -> None:
    server_tls, client_tls = tls_contexts(tmp_path, "localhost")
    async with serving(keep_alive, tls=server_tls) as (server, port):
        trusting = Connections(ssl_context=client_tls)
        default = Connections()  # the public bundle: this certificate is unknown to it
        try:
            answer = await trusting.post(f"https://localhost:{port}/tls", b"x", {})
            assert answer.status_code == 200
            with pytest.raises(httpcore.ConnectError):
                await default.post(f"https://localhost:{port}/tls", b"x", {})
            with pytest.raises(httpcore.ConnectError):  # the certificate names localhost only
                await trusting.post(f"https://127.0.0.1:{port}/tls", b"x", {})
        finally:
            await trusting.aclose()
            await default.aclose()
    assert server.requests[0][1] == "POST /tls HTTP/1.1"
    assert server.requests[0][2]["host"] == f"localhost:{port}"


def test_urls_are_split_into_origin_target_and_host() -> None:
    origin, target, host = _split("https://Hooks.Example.com/a b/é?x=1#frag")
    assert (origin.scheme, origin.host, origin.port) == (b"https", b"hooks.example.com", 443)
    assert target == b"/a%20b/%C3%A9?x=1" and host == b"hooks.example.com"
    origin, target, host = _split("http://[::1]:8080")
    assert (origin.host, origin.port, target, host) == (b"::1", 8080, b"/", b"[::1]:8080")
    assert _split("http://h:80/")[2] == b"h"
    for bad in ("ftp://h/x", "http:///x", "http://h:99999/"):
        with pytest.raises(InvalidURL):
            _split(bad)


async def test_the_webhook_channel_classifies_connection_outcomes() -> None:
    channel = WebhookChannel(
        Connections(timeout=0.3),
        destinations=DestinationPolicy.from_settings(["127.0.0.1"], local_mode=False),
        signing_secret=None,
    )

    def message(url: str) -> Message:
        return Message("n", "key", "webhook", url, {"alert": {}}, 1, signing_secret=METHOD_SECRET)

    async def silent(_c: int, _q: int, r: asyncio.StreamReader, _w) -> bool:
        await r.read()  # never answers
        return False

    try:
        async with serving(silent) as (_server, port):
            timed_out = await channel.send(message(f"http://127.0.0.1:{port}/"))
        assert (timed_out.outcome, timed_out.error) == ("retry", "timed out")
        async with serving(keep_alive) as (_server, port):
            refused_port = port
        refused = await channel.send(message(f"http://127.0.0.1:{refused_port}/"))
        assert refused.outcome == "retry" and "ConnectError" in (refused.error or "")
    finally:
        assert isinstance(channel.client, Connections)
        await channel.client.aclose()
