"""The nself-anomaly FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import build_app
from services.common.settings import ANOMALY_PORT, Settings, load_settings

PLUGIN = "nself-anomaly"
DEFAULT_PORT = ANOMALY_PORT
DESCRIPTION = (
    "Statistical anomaly detection on metrics: detectors, ingest scored on arrival, "
    "anomalies with explanations, feedback and stats."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    return build_app(plugin=PLUGIN, settings=settings, description=DESCRIPTION)
