"""The HTTP side of Prometheus pull: one ``GET /api/v1/query_range`` per poll.

The source URL goes through the same destination check as on-call's webhooks
(``services.common.destinations``): the host is resolved once, every address is
judged against the allow-list (``ANOMALY_ALLOWED_SOURCES``; loopback in local
mode), and the connection dials only those addresses (``PinnedBackend``), so a
name that answers differently to the check and to the connect (DNS rebinding)
cannot reach a private address. Redirects are not followed (a 3xx is an error),
no proxy is taken from the environment, the answer is read up to
``MAX_ANSWER_BYTES``. Every failure is a :class:`SourceError` whose message is
safe to store and show: it never carries the request's headers.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx

from services.anomaly.prometheus_pull.plan import Window, error_message
from services.anomaly.prometheus_pull.source import PullSource
from services.common.destinations import DestinationPolicy, PinnedBackend, Refused

MAX_ANSWER_BYTES = 64 * 1024 * 1024
QUERY_SECONDS = 10.0
USER_AGENT = "nself-anomaly prometheus pull"


class SourceError(Exception):
    """A poll that got no usable answer (refused destination, connection, timeout,
    HTTP or Prometheus error); ``str()`` is the message shown in ``source_status``."""


class PrometheusClient:
    """Queries the sources; ``policy`` says which destinations it may reach."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        timeout: float = QUERY_SECONDS,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
        return self._ssl

    async def query_range(self, source: PullSource, window: Window) -> Any:
        """The decoded JSON answer of the window's query_range (``status: success``)."""
        url = source.url.rstrip("/") + "/api/v1/query_range"
        try:
            checked = await self.policy.check(url)
        except Refused as refused:
            raise SourceError(f"source URL refused: {refused.reason}") from None
        params = urlencode(
            {
                "query": source.query,
                "start": str(window.start),
                "end": str(window.last),
                "step": str(window.step),
            }
        )
        headers = {
            **source.request_headers(),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._get(f"{checked.url}?{params}", headers, checked)
        except TimeoutError:
            raise SourceError(f"timed out after {self.timeout:g} s") from None
        except httpcore.TimeoutException as exc:
            raise SourceError(f"timed out: {exc.__class__.__name__}") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            reason = str(exc) or exc.__class__.__name__
            raise SourceError(f"cannot reach Prometheus: {reason}"[:500]) from None
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        message = error_message(decoded)
        if status != 200:
            shown = message or body[:200].decode("utf-8", "replace").strip() or "no body"
            raise SourceError(f"HTTP {status}: {shown}"[:500])
        if message is not None:
            raise SourceError(message)
        if decoded is None:
            raise SourceError("the answer is not JSON")
        return decoded

    async def _get(self, url: str, headers: dict[str, str], checked: Any) -> tuple[int, bytes]:
        seconds = self.timeout
        extensions = {
            "timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
        }
        async with httpcore.AsyncConnectionPool(
            ssl_context=self._ssl_context(),
            network_backend=PinnedBackend(checked.addresses),
            max_connections=1,
        ) as pool:
            async with pool.stream(
                "GET", url, headers=list(headers.items()), extensions=extensions
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_stream():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError(
                            f"the answer is over {self.max_bytes} bytes: narrow the query"
                        )
                    chunks.append(chunk)
                return response.status, b"".join(chunks)
