"""The nself-anomaly FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.anomaly import hasura, modelcache, views
from services.anomaly.coalesce import SingleIngest
from services.anomaly.fastpath import IngestFastPath
from services.anomaly.paging import paging_hook
from services.anomaly.retention import retention_hook
from services.common.app import build_app
from services.common.settings import ANOMALY_PORT, Settings, load_settings

PLUGIN = "nself-anomaly"
DEFAULT_PORT = ANOMALY_PORT
DESCRIPTION = (
    "Statistical anomaly detection on metrics: detectors, ingest scored on arrival, "
    "anomalies with explanations, feedback and stats."
)


@asynccontextmanager
async def ingest_hook(app: FastAPI) -> AsyncIterator[None]:
    """Group commit of single-point ingests and the model cache, for the app's lifetime."""
    pool = app.state.pool
    app.state.single_ingest = SingleIngest(pool, on_pages=lambda: views.wake(app))
    try:
        yield
    finally:
        await app.state.single_ingest.drain()
        modelcache.forget(pool)


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    """The service; `background=False` leaves out the paging sender and the pruner."""
    settings = settings or load_settings()
    hooks = [ingest_hook] + ([paging_hook(), retention_hook()] if background else [])
    app = build_app(
        plugin=PLUGIN,
        settings=settings,
        description=DESCRIPTION,
        routers=[views.router, hasura.router],
        hooks=hooks,
    )
    # the hot path, served before routing (same behaviour as the documented route)
    app.add_middleware(IngestFastPath, service_app=app, plugin=PLUGIN)
    return app
