"""``POST /api/v1/ingest``: the documented route and a raw ASGI shim, one handler.

Both call ``handle_ingest``. The route is the OpenAPI entry; the shim
(``IngestShim``) serves the same method and path ahead of routing, because a
single point costs a few hundred microseconds and routing, dependency
injection and the request object would add a third to that. The shim uses the
same body limit, 413, JSON-only 415, request metrics (``common.guard``),
authentication and error envelope (``common.errors.exception_response``) as every route.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.anomaly.deps import ERRORS
from services.anomaly.ingest.models import MAX_BATCH, IngestResult, PointIn
from services.anomaly.ingest.parse import parse_ingest
from services.common.auth import Caller, authenticate
from services.common.errors import exception_response
from services.common.guard import (
    body_headers,
    is_json,
    not_json,
    read_body,
    record_request,
    too_large,
)
from services.common.wire import route_path

PATH = "/api/v1/ingest"

router = APIRouter(prefix="/api/v1")


async def handle_ingest(state: Any, account: str, body: bytes) -> Response:
    """Parse, store and score, answer: the whole of ``POST /api/v1/ingest`` after auth.

    A single point joins the group commit of concurrent single points
    (``coalesce.SingleIngest``); a batch is one call of its own.
    """
    points, batch = parse_ingest(body)
    if batch:
        outcome = await state.ingestor.ingest(account, points, batch=True)
    else:
        outcome = await state.single_ingest.submit(account, points[0])
    return Response(outcome.to_json(), media_type="application/json")


_point_schema = PointIn.model_json_schema()
_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _point_schema,
                        {
                            "type": "object",
                            "title": "Batch",
                            "required": ["points"],
                            "additionalProperties": False,
                            "properties": {
                                "points": {
                                    "type": "array",
                                    "maxItems": MAX_BATCH,
                                    "items": _point_schema,
                                }
                            },
                        },
                    ]
                },
                "examples": {
                    "single": {
                        "value": {
                            "detector_id": "api-latency",
                            "value": 182.4,
                            "timestamp": "2026-11-23T09:00:00Z",
                        }
                    },
                    "batch": {
                        "value": {
                            "points": [
                                {
                                    "detector_id": "api-latency",
                                    "value": 182.4,
                                    "timestamp": "2026-11-23T09:00:00Z",
                                },
                                {
                                    "detector_id": "queue-depth",
                                    "value": 12,
                                    "timestamp": "2026-11-23T09:00:00+01:00",
                                },
                            ]
                        }
                    },
                },
            }
        },
    }
}


@router.post(
    "/ingest",
    tags=["ingest"],
    summary="Store and score points (one, or a batch of up to 10,000)",
    description=(
        "Validated as a whole: one bad point rejects the batch with 422 naming its index "
        "and nothing is written. More than 10,000 points: 413. Unknown detector: 404 (422 "
        "naming the index in a batch); disabled detector: 409. A point whose detector and "
        "timestamp are already stored is ignored and counted as a duplicate; a point older "
        "than its detector's latest is stored, scored against the current detector without "
        "updating it, and marked late. Scoring is synchronous: the response lists the "
        "anomalies found."
    ),
    response_model=IngestResult,
    openapi_extra=_INGEST_BODY,
    responses={**ERRORS, 409: {"description": "detector disabled"}, 413: {"description": "over"}},
)
async def ingest(request: Request, caller: Caller) -> Response:
    return await handle_ingest(request.app.state, caller.account_id, await request.body())


class IngestShim:
    """Pure ASGI: ``POST /api/v1/ingest`` answered by ``handle_ingest`` before routing;
    anything else goes down the stack."""

    def __init__(self, app: ASGIApp, *, service_app: FastAPI, plugin: str) -> None:
        self.app = app
        self.service_app = service_app
        self.plugin = plugin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response = await self._answer(scope, receive)
        await response(scope, receive, send)
        record_request(self.plugin, "POST", PATH, response.status_code, started)

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        state = self.service_app.state
        limit = state.settings.max_body_bytes
        try:
            declared, media = body_headers(scope)
            if declared is not None and declared > limit:
                return too_large(limit)
            json_body = is_json(media)
            if declared and not json_body:
                return not_json(media, close=True)
            body = await read_body(receive, limit)
            if body is None:
                return too_large(limit)
            if body and not json_body:
                return not_json(media, close=False)
            account = authenticate(Headers(scope=scope), state.settings).account_id
            return await handle_ingest(state, account, body)
        except Exception as exc:
            return exception_response(exc, f"POST {PATH}")
