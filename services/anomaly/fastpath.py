"""``POST /api/v1/ingest`` as a pure ASGI handler, ahead of the framework's routing.

The ingest route is the service's hot path: a single point costs a few
hundred microseconds, and routing, dependency injection, the request object
and the middlewares below would take a third of that. This middleware serves
exactly that method and path itself, with the same behaviour as the
documented FastAPI route (``views.ingest``, which stays the reference and the
OpenAPI entry): the same body limit (413), authentication (401), parsing and
answers, the same error envelope (``errors.error_response``) and the same
request metrics as ``GuardMiddleware``. Anything else goes down the stack.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.anomaly import scoring, service, views
from services.common.auth import authenticate
from services.common.errors import (
    REFUSED_VALUES,
    ApiError,
    error_response,
    refused_value_response,
)
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("nsentry.anomaly")

PATH = "/api/v1/ingest"


class IngestFastPath:
    def __init__(self, app: ASGIApp, *, service_app: FastAPI, plugin: str) -> None:
        self.app = app
        self.service_app = service_app
        self.plugin = plugin
        self.requests = HTTP_REQUESTS
        self.latency = HTTP_LATENCY.labels(plugin, "POST", PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response = await self._answer(scope, receive)
        await response(scope, receive, send)
        self.requests.labels(self.plugin, "POST", PATH, str(response.status_code)).inc()
        self.latency.observe(time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        state = self.service_app.state
        limit = state.settings.max_body_bytes
        try:
            headers = Headers(scope=scope)
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                return _too_large(limit)
            body = await _read(receive, limit)
            if body is None:
                return _too_large(limit)
            account = authenticate(headers, state.settings).account_id
            points, batch = service.parse_ingest(body)
            single = getattr(state, "single_ingest", None)
            if not batch and single is not None:
                outcome = await single.submit(account, points[0])
            else:
                outcome = await scoring.ingest(
                    state.pool,
                    account,
                    points,
                    batch=batch,
                    on_pages=lambda: views.wake(self.service_app),
                )
            return Response(service.ingest_result_json(outcome), media_type="application/json")
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
        except REFUSED_VALUES as exc:  # as the documented route answers them
            return refused_value_response(exc)
        except Exception:  # the trace goes to the log, never to the client
            log.exception("unhandled error on POST %s", PATH)
            return error_response(500, "internal", "internal server error")


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _read(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: dict[str, Any] = await receive()
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


def _too_large(limit: int) -> Response:
    """GuardMiddleware's 413 (the connection is closed: the body was not read)."""
    return error_response(
        413,
        "payload_too_large",
        f"request body over the {limit}-byte limit",
        None,
        {"connection": "close"},
    )
