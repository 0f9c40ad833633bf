"""The poller's HTTP side against real HTTP servers on loopback: what it sends (the
window, the source's headers and bearer) and how each failure reads in
``source_status`` (no secret in any of them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from services.anomaly.prometheus_pull.client import PrometheusClient, SourceError
from services.anomaly.prometheus_pull.plan import Window
from services.anomaly.prometheus_pull.source import PullSource
from services.common.destinations import DestinationPolicy
from tests.anomaly.oncall_standin import free_port

pytestmark = pytest.mark.db
LOOPBACK = DestinationPolicy(allow_loopback=True)
WINDOW = Window(start=1_800_000_000, last=1_800_000_060, step=60, quiet_until=None, behind=False)
OK = {"status": "success", "data": {"resultType": "matrix", "result": []}}


def answer(status: str, body: bytes, headers: str = "Content-Type: application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\nConnection: close"
    return head.encode() + b"\r\n\r\n" + body


@asynccontextmanager
async def server(reply: Callable[[bytes], bytes | None]) -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP server answering each request with ``reply(request)`` (None: never)."""
    seen: list[bytes] = []
    hold = asyncio.Event()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            seen.append(request)
            data = reply(request)
            if data is None:
                await hold.wait()
            else:
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up first (a timeout, an answer over its limit)
        finally:
            writer.close()

    port = free_port()
    srv = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        hold.set()
        srv.close()
        await srv.wait_closed()
        # Python 3.11's wait_closed does not wait for the connections' handlers: wait
        # here, so no connection outlives the test (and is closed by the garbage collector)
        await asyncio.gather(*handlers, return_exceptions=True)


def source(url: str, **fields: object) -> PullSource:
    values: dict[str, object] = {
        "url": url,
        "query": 'up{job="a b"}',
        "step": 60,
        "lookback": 0,
        "headers": {},
        "bearer": None,
    }
    values.update(fields)
    return PullSource(**values)  # type: ignore[arg-type]


async def test_the_window_headers_and_bearer_are_sent() -> None:
    async with server(lambda _: answer("200 OK", json.dumps(OK).encode())) as (url, seen):
        client = PrometheusClient(LOOPBACK)
        got = await client.query_range(
            source(url + "/prefix/", headers={"X-Scope-OrgID": "t7"}, bearer="tok"), WINDOW
        )
    assert got == OK
    request = seen[0].decode()
    line = request.split("\r\n")[0]
    assert line.startswith("GET /prefix/api/v1/query_range?query=up%7Bjob%3D%22a+b%22%7D")
    assert "start=1800000000&end=1800000060&step=60" in line
    headers = {
        h.split(":")[0].lower(): h.split(":", 1)[1].strip() for h in request.split("\r\n")[1:] if h
    }
    assert headers["authorization"] == "Bearer tok" and headers["x-scope-orgid"] == "t7"


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (
            answer("503 Service Unavailable", b"overloaded", "Content-Type: text/plain"),
            "HTTP 503: overloaded",
        ),
        (
            answer(
                "400 Bad Request",
                json.dumps(
                    {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
                ).encode(),
            ),
            "HTTP 400: bad_data: parse error at char 5",
        ),
        (answer("302 Found", b"", "Location: http://10.0.0.1/"), "HTTP 302"),
        (answer("200 OK", b"<html>login</html>", "Content-Type: text/html"), "not JSON"),
        (
            answer(
                "200 OK",
                json.dumps(
                    {"status": "error", "errorType": "timeout", "error": "query timed out"}
                ).encode(),
            ),
            "timeout: query timed out",
        ),
    ],
)
async def test_failures_read_plainly_and_carry_no_secret(reply: bytes, says: str) -> None:
    async with server(lambda _: reply) as (url, _):
        with pytest.raises(SourceError) as caught:
            await PrometheusClient(LOOPBACK).query_range(source(url, bearer="s3cr3t"), WINDOW)
    assert says in str(caught.value) and "s3cr3t" not in str(caught.value)


async def test_a_silent_server_times_out() -> None:
    async with server(lambda _: None) as (url, _):
        with pytest.raises(SourceError, match="timed out"):
            await PrometheusClient(LOOPBACK, timeout=0.5).query_range(source(url), WINDOW)


async def test_an_answer_over_the_limit_is_refused() -> None:
    body = json.dumps({**OK, "pad": "x" * 5000}).encode()
    async with server(lambda _: answer("200 OK", body)) as (url, _):
        with pytest.raises(SourceError, match="over 1000 bytes"):
            await PrometheusClient(LOOPBACK, max_bytes=1000).query_range(source(url), WINDOW)


async def test_nothing_listening_and_a_refused_destination() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError, match="cannot reach Prometheus"):
        await PrometheusClient(LOOPBACK).query_range(source(closed), WINDOW)
    strict = DestinationPolicy.from_settings(
        [], local_mode=False, setting="ANOMALY_ALLOWED_SOURCES"
    )
    async with server(lambda _: answer("200 OK", json.dumps(OK).encode())) as (url, seen):
        with pytest.raises(SourceError, match="refused.*ANOMALY_ALLOWED_SOURCES"):
            await PrometheusClient(strict).query_range(source(url), WINDOW)
        assert seen == []  # never called
