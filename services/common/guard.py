"""The request guard every route goes through: the body limit (413), JSON bodies
only (415) and request metrics.

``GuardMiddleware`` wraps each service app. The pieces are also what a raw
ASGI handler ahead of routing uses (``anomaly.ingest.views.IngestShim``), so a
body limit, a 413, a 415 and a request metric mean the same thing on every path.

Every request body the services take is JSON (SPEC: ``Content-Type:
application/json``, 415 otherwise): a POST, PUT or PATCH with a non-empty body
whose Content-Type is not ``application/json`` (parameters such as ``charset``
allowed) or ``application/*+json`` is refused before routing and before
authentication, like a body over the limit, so nothing reads or stores it. A
request without a body is not concerned, whatever its Content-Type. (The wire
formats with their own media types, remote write and OTLP, are answered ahead
of the guard by ``common.wire.WireShim``s, with its pieces.) The paths an app
names in ``form_paths`` also take ``application/x-www-form-urlencoded``
(nself-oncall's generic integration, which takes JSON, form fields or query
parameters, as GoAlert's does).
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


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def not_json(content_type: bytes | None, *, close: bool) -> Response:
    """The 415 for a body that is not declared JSON (``close``: the body was not read)."""
    given = None if content_type is None else content_type.decode("latin-1")[:100]
    return error_response(
        415,
        "unsupported_media_type",
        "a request body must be JSON, sent with Content-Type: application/json"
        + (" (no Content-Type given)" if given is None else f" (not {given!r})"),
        {"content_type": given, "accepted": ["application/json", "application/*+json"]},
        {"connection": "close"} if close else None,
    )


def is_json(content_type: bytes | None) -> bool:
    """Whether a Content-Type value says JSON: ``application/json`` or
    ``application/<anything>+json``, any case, parameters (``; charset=utf-8``) allowed."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/")
        and media.endswith(b"+json")
        and len(media) > len(b"application/+json")
    )


def body_headers(scope: Scope) -> tuple[int | None, bytes | None]:
    """The request's Content-Length (None when absent or malformed) and Content-Type
    (None when absent; the first one when repeated), in one pass over the headers."""
    length: int | None = None
    media: bytes | None = None
    seen_length = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and not seen_length:
            seen_length = True
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"content-type" and media is None:
            media = value
    return length, media


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


def is_form(content_type: bytes | None) -> bool:
    """Whether a Content-Type value says ``application/x-www-form-urlencoded``."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/x-www-form-urlencoded"


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
    """Pure ASGI: refuse bodies over the limit with 413 and bodies that are not JSON with
    415, and record request metrics."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        plugin: str,
        max_body_bytes: int,
        form_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.plugin = plugin
        self.max_body_bytes = max_body_bytes
        self.form_paths = form_paths

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

        declared, media = body_headers(scope)
        refusal: Response | None = None
        if declared is not None and declared > self.max_body_bytes:
            refusal = too_large(self.max_body_bytes)
        elif scope["method"] in BODY_METHODS:
            json_body = is_json(media) or (scope["path"] in self.form_paths and is_form(media))
            if declared is None:
                # no Content-Length (chunked): read up to the limit, then replay
                body = await read_body(receive, self.max_body_bytes)
                if body is None:
                    refusal = too_large(self.max_body_bytes)
                elif body and not json_body:
                    refusal = not_json(media, close=False)
                else:
                    receive = _replay(body, receive)
            elif declared and not json_body:
                refusal = not_json(media, close=True)
        if refusal is not None:
            await refusal(scope, receive, send_and_record)
        else:
            await self.app(scope, receive, send_and_record)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        record_request(self.plugin, scope["method"], template, status_holder["status"], started)
