"""The nself-anomaly FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.anomaly import hasura, views
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


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    """The service; `background=False` leaves out the paging sender and the pruner."""
    settings = settings or load_settings()
    hooks = [paging_hook(), retention_hook()] if background else []
    return build_app(
        plugin=PLUGIN,
        settings=settings,
        description=DESCRIPTION,
        routers=[views.router, hasura.router],
        hooks=hooks,
    )
