"""The console's test stack: nself-anomaly, nself-oncall and the console served by
uvicorn on free loopback ports (a real browser must reach them), one fake clock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.anomaly.app import create_app as create_anomaly
from services.console.app import create_app as create_console
from services.console.config import ConsoleSettings
from services.launcher import _SharedLoopServer
from services.oncall.app import create_app as create_oncall
from tests.clock import FakeClock
from tests.conftest import PLUGIN_SECRET, make_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = _SharedLoopServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)  # polling a server's start-up flag, not waiting on time
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Stack:
    anomaly: str
    oncall: str
    console: str
    clock: FakeClock
    http: httpx.AsyncClient

    def headers(self, account: str = "primary") -> dict[str, str]:
        return {"Authorization": f"Bearer {PLUGIN_SECRET}", "X-Hasura-Source-Account-Id": account}

    async def call(self, service: str, method: str, path: str, account: str = "primary",
                   **kwargs: Any) -> Any:  # fmt: skip
        base = self.anomaly if service == "anomaly" else self.oncall
        response = await self.http.request(
            method, base + path, headers=self.headers(account), **kwargs
        )
        assert response.status_code < 400, (method, path, response.status_code, response.text)
        return response.json() if response.content else None


@asynccontextmanager
async def stack(database_url: str, clock: FakeClock, **console: Any) -> AsyncIterator[Stack]:
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    settings = make_settings(
        database_url, oncall_url=urls[1], oncall_allowed_destinations="127.0.0.1"
    )
    console_settings = ConsoleSettings(
        _env_file=None,
        anomaly_url=urls[0],
        oncall_url=urls[1],
        **console,  # type: ignore[call-arg]
    )
    async with (
        served(create_anomaly(settings, clock=clock), ports[0]),
        served(create_oncall(settings, clock=clock), ports[1]),
        served(create_console(settings, console_settings, clock=clock), ports[2]),
        httpx.AsyncClient(timeout=30, trust_env=False) as http,
    ):
        yield Stack(urls[0], urls[1], urls[2], clock, http)
