"""Test doubles that are real servers: an HTTP sink and an SMTP server on free ports."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller

from tests.clock import FakeClock as FakeClock  # re-exported for the on-call tests

SIGNING_SECRET = "webhook-signing-secret-for-tests-0123456789"
# a contact method's Standard Webhooks secret, for channel tests that build a Message
METHOD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 request off a real socket: its request line, headers (lower-case
    names) and body (by Content-Length)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return head[0], headers, body


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpSink:
    """A real HTTP/1.1 server recording every request; answers follow a per-path script."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def script(self, path: str, *statuses: int) -> None:
        self.scripts[path].extend(statuses)

    def to(self, path: str, status: int | None = 200) -> list[Received]:
        return [
            r for r in self.received if r.path == path and (status is None or r.status == status)
        ]

    async def wait_for(self, path: str, count: int = 1, seconds: float = 30.0) -> list[Received]:
        """Wait (on arrivals, not a timer) until `path` got `count` successful requests."""
        async with asyncio.timeout(seconds):
            while len(self.to(path)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.to(path)

    async def start(self) -> HttpSink:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line, headers, body = await read_request(reader)
            _method, path, _version = request_line.split(" ", 2)
            queue = self.scripts.get(path)
            status = queue.popleft() if queue else 200
            self.received.append(Received(path, headers, body, status))
            self._arrived.set()
            reply = b'{"ok":true}'
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                + reply
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _MailHandler:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: N802, E501
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": envelope.content}
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free local port."""

    def __init__(self) -> None:
        self.handler = _MailHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.handler.messages

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


async def created(client: Any, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """POST that must answer 201; the created resource."""
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def webhook_responders(
    client: Any, sink: HttpSink, ids: tuple[str, ...], headers: dict[str, str]
) -> None:
    """Per id: a person paged by webhook at `sink/<id>` (generous rate limit) and a
    one-step policy of the same id targeting that person."""
    for pid in ids:
        await created(
            client,
            "/api/v1/people",
            {
                "id": pid,
                "name": pid.title(),
                "contact_methods": [
                    {
                        "type": "webhook",
                        "url": sink.url(f"/{pid}"),
                        "rate_limit": {"max": 1000, "per_seconds": 60},
                    }
                ],
            },
            headers,
        )
        await created(
            client,
            "/api/v1/policies",
            {"id": pid, "name": pid, "steps": [{"targets": [{"type": "person", "id": pid}]}]},
            headers,
        )
