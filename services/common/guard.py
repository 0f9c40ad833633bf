"""The request guard every route goes through: the body limit (413) and request metrics.

``GuardMiddleware`` wraps each service app. The pieces are also what a raw
ASGI handler ahead of routing uses (``anomaly.ingest.views.IngestShim``), so a
body limit, a 413 and a request metric mean the same thing on every path.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import error_response
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS


def too_large(limit: int) -> Response:
    """The 413 for a body over ``limit`` (the connection closes: the body was not read)."""
    return error_response(
        413,
        "payload_too_large",
        f"request body over the {limit}-byte limit",
        None,
        {"connection": "close"},
    )


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent or malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@functools.lru_cache(maxsize=4096)
def _series(plugin: str, method: str, route: str, status: int) -> tuple[Any, Any]:
    # the metric children of one label set: looking them up takes a lock and a tuple
    # per call, a measurable part of a single-point ingest
    return (
        HTTP_REQUESTS.labels(plugin, method, route, str(status)),
        HTTP_LATENCY.labels(plugin, method, route),
    )


def record_request(plugin: str, method: str, route: str, status: int, started: float) -> None:
    """Count one answered request and its latency (``started``: a perf_counter reading)."""
    requests, latency = _series(plugin, method, route, status)
    requests.inc()
    latency.observe(time.perf_counter() - started)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class GuardMiddleware:
    """Pure ASGI: refuse bodies over the limit with 413 and record request metrics."""

    def __init__(self, app: ASGIApp, *, plugin: str, max_body_bytes: int) -> None:
        self.app = app
        self.plugin = plugin
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        declared = declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await too_large(self.max_body_bytes)(scope, receive, send_and_record)
        elif declared is None and scope["method"] in {"POST", "PUT", "PATCH"}:
            # no Content-Length (chunked): read up to the limit, then replay
            body = await read_body(receive, self.max_body_bytes)
            if body is None:
                await too_large(self.max_body_bytes)(scope, receive, send_and_record)
            else:
                await self.app(scope, _replay(body, receive), send_and_record)
        else:
            await self.app(scope, receive, send_and_record)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        record_request(self.plugin, scope["method"], template, status_holder["status"], started)
