"""The nself-anomaly FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.anomaly.anomalies.views import router as anomalies_router
from services.anomaly.backtest.views import router as backtest_router
from services.anomaly.detectors.auto import warm_up
from services.anomaly.detectors_api.views import router as detectors_router
from services.anomaly.hasura.views import router as hasura_router
from services.anomaly.ingest.coalesce import SingleIngest
from services.anomaly.ingest.pipeline import Clock, Ingestor, utcnow
from services.anomaly.ingest.views import IngestShim
from services.anomaly.ingest.views import router as ingest_router
from services.anomaly.nodata.worker import nodata_hook
from services.anomaly.otlp.views import OtlpShim
from services.anomaly.otlp.views import router as otlp_router
from services.anomaly.paging.sender import paging_hook
from services.anomaly.points.views import router as points_router
from services.anomaly.prometheus_pull.poller import pull_hook
from services.anomaly.remote_write.inbox import inbox_hook
from services.anomaly.remote_write.views import RemoteWriteShim
from services.anomaly.remote_write.views import router as remote_write_router
from services.anomaly.retention import retention_hook
from services.anomaly.series_api.views import router as series_router
from services.anomaly.stats.views import router as stats_router
from services.common.app import build_app
from services.common.settings import ANOMALY_PORT, Settings, load_settings

PLUGIN = "nself-anomaly"
DEFAULT_PORT = ANOMALY_PORT
DESCRIPTION = (
    "Statistical anomaly detection on metrics: detectors, ingest scored on arrival, "
    "anomalies with explanations, feedback and stats."
)


def wake_pager(app: FastAPI) -> None:
    """Tell the paging sender (if it runs) that pages are queued."""
    event = getattr(app.state, "page_wakeup", None)
    if event is not None:
        event.set()


@asynccontextmanager
async def ingest_hook(app: FastAPI) -> AsyncIterator[None]:
    """The ingest pipeline (its live-detector cache) and the group commit of
    single-point ingests, for the app's lifetime. The default detector's compiled
    loop is loaded (or compiled, on a fresh install) before the app is ready."""
    await asyncio.to_thread(warm_up)
    app.state.ingestor = Ingestor(
        app.state.pool,
        on_pages=lambda: wake_pager(app),
        clock=app.state.clock,
        cache_capacity=app.state.settings.anomaly_model_cache,
    )
    app.state.single_ingest = SingleIngest(app.state.ingestor)
    try:
        yield
    finally:
        await app.state.single_ingest.drain()
        app.state.ingestor.cache.clear()


def create_app(
    settings: Settings | None = None, *, background: bool = True, clock: Clock | None = None
) -> FastAPI:
    """The service; `background=False` leaves out the paging worker, the no-data pass
    and the pruner;
    `clock` replaces the wall clock (tests): when points are scored (the page age
    limit) and when the paging worker runs (quiet episodes ending, retries)."""
    settings = settings or load_settings()
    clock = clock or utcnow
    hooks = [ingest_hook, inbox_hook()] + (
        [paging_hook(clock=clock), nodata_hook(), retention_hook()] if background else []
    )
    if background:  # Prometheus pull: polls the sources of metric_source type prometheus
        hooks.append(pull_hook(clock=clock))
    app = build_app(
        plugin=PLUGIN,
        settings=settings,
        description=DESCRIPTION,
        routers=[
            ingest_router,
            remote_write_router,
            otlp_router,
            detectors_router,
            series_router,
            backtest_router,
            points_router,
            anomalies_router,
            stats_router,
            hasura_router,
        ],
        hooks=hooks,
    )
    app.state.clock = clock
    # the hot path, answered before routing by the same handler as the documented route
    app.add_middleware(IngestShim, service_app=app, plugin=PLUGIN)
    # remote write's protobuf body, answered ahead of the guard's JSON-only rule
    app.add_middleware(RemoteWriteShim, service_app=app, plugin=PLUGIN)
    # OTLP/HTTP's protobuf or gzip bodies, likewise
    app.add_middleware(OtlpShim, service_app=app, plugin=PLUGIN)
    return app
