"""`/health`, `/ready` and `/metrics`: no auth, for probes and scrapers."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from services import __version__

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    plugin: str
    version: str
    db: Literal["ok", "unreachable"]


class Ready(BaseModel):
    status: Literal["ready"]


class NotReady(BaseModel):
    status: Literal["not_ready"]
    error: str


@router.get(
    "/health",
    summary="Liveness and database reachability",
    response_model=Health,
    responses={503: {"model": Health, "description": "degraded: the database is unreachable"}},
)
async def health(request: Request) -> JSONResponse:
    body = {"status": "ok", "plugin": request.app.state.plugin, "version": __version__, "db": "ok"}
    try:
        async with asyncio.timeout(2):
            await request.app.state.pool.fetchval("SELECT 1")
    except Exception:  # any failure to reach Postgres means degraded, never a 500
        body.update(status="degraded", db="unreachable")
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


@router.get(
    "/ready",
    summary="Ready once migrations are applied and the database answers",
    response_model=Ready,
    responses={503: {"model": NotReady, "description": "migrations pending or database away"}},
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    if not getattr(state, "ready", False):
        error = getattr(state, "ready_error", None) or "migrations not applied yet"
        return JSONResponse({"status": "not_ready", "error": error}, status_code=503)
    try:
        async with asyncio.timeout(2):
            await state.pool.fetchval("SELECT 1")
    except Exception as exc:  # report why, never a trace
        return JSONResponse(
            {"status": "not_ready", "error": f"database unreachable ({exc.__class__.__name__})"},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
