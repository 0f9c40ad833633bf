"""The HTTP clients of webhook and Slack delivery: a few small keep-alive clients.

httpx's connection pool does work per request that grows with the connections
it holds: every request scans them all (polling each idle socket) and, with
several requests waiting, scans again per request that loses the race for a
connection. One client with 32 sends in flight cost about three times the CPU
per webhook of one with a single send in flight. So delivery keeps one small
client per concurrent send (each holding a few keep-alive connections, reused
most-recently-used first) and lends one per request; they share one TLS
context.

httpcore also imports the optional `sniffio` for every lock it creates; where
that package is not installed, each attempt searched `sys.path` again (about a
dozen per request). :func:`remember_absent_sniffio` records the absence once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

CONNECTIONS_PER_CLIENT = 4


def remember_absent_sniffio() -> None:
    """Make `import sniffio` fail at once when it is not installed (as it would anyway)."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # the import system's "absent"


class ClientPool:
    """Up to `size` httpx clients, one lent per request (most recently used first)."""

    def __init__(
        self,
        size: int,
        *,
        timeout: float = 10.0,
        connections_per_client: int = CONNECTIONS_PER_CLIENT,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a client pool needs at least one client")
        remember_absent_sniffio()
        self.size = size
        self.timeout = timeout
        self.limits = httpx.Limits(
            max_connections=connections_per_client,
            max_keepalive_connections=connections_per_client,
        )
        self._verify = verify
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._free = asyncio.Semaphore(size)

    def _new_client(self) -> httpx.AsyncClient:
        if self._verify is None:
            self._verify = httpx.create_ssl_context(trust_env=False)
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            limits=self.limits,
            verify=self._verify,
            trust_env=False,
        )
        self._all.append(client)
        return client

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client for one request; waits while all `size` are lent."""
        async with self._free:
            client = self._idle.pop() if self._idle else self._new_client()
            try:
                yield client
            finally:
                self._idle.append(client)

    async def aclose(self) -> None:
        clients, self._all, self._idle = self._all, [], []
        for client in clients:
            await client.aclose()
