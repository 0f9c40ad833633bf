"""A real HTTP server on 127.0.0.1 standing in for nself-oncall's alert routes.

Plain asyncio streams (no framework): it records every request and answers like
on-call does: `POST /api/v1/alerts` 201 with a new alert, 200 with the open alert
for a known open dedup key; `POST /api/v1/alerts/{id}/resolve` 200 with the alert,
resolved (again 200 when it already is; 404 for an unknown id); or whatever status
`respond` picks.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class OncallStandIn:
    port: int
    respond: Callable[[Received], int | None] = lambda _r: None
    requests: list[Received] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)  # open dedup key -> alert id
    status: dict[int, str] = field(default_factory=dict)  # alert id -> triggered/resolved
    received: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, json.loads(raw) if raw else None)
                self.requests.append(request)
                status, answer = self._answer(request)
                payload = json.dumps(answer).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                self.received.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        forced = self.respond(request)
        if forced is not None:
            return forced, {"error": {"code": "forced", "message": "forced"}}
        if request.path.endswith("/resolve"):
            alert_id = int(request.path.split("/")[-2])
            if alert_id not in self.status:
                return 404, {"error": {"code": "not_found", "message": "no such alert"}}
            self.status[alert_id] = "resolved"
            self.alerts = {k: v for k, v in self.alerts.items() if v != alert_id}
            return 200, {"id": alert_id, "status": "resolved"}
        key = request.body["dedup_key"]
        if key in self.alerts:
            return 200, {"id": self.alerts[key], "dedup_key": key, "status": "triggered"}
        alert_id = len(self.status) + 1
        self.alerts[key] = alert_id
        self.status[alert_id] = "triggered"
        return 201, {"id": alert_id, "dedup_key": key, "status": "triggered"}

    def opened(self) -> list[Received]:
        """The POST /api/v1/alerts requests."""
        return [r for r in self.requests if r.path == "/api/v1/alerts"]

    def resolved(self) -> list[Received]:
        """The resolve requests."""
        return [r for r in self.requests if r.path.endswith("/resolve")]
