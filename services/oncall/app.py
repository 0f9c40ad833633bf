"""The nself-oncall FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import build_app
from services.common.settings import ONCALL_PORT, Settings, load_settings

PLUGIN = "nself-oncall"
DEFAULT_PORT = ONCALL_PORT
DESCRIPTION = (
    "On-call: people, schedules with layers and overrides, escalation policies, "
    "alerts and notification delivery."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    return build_app(plugin=PLUGIN, settings=settings, description=DESCRIPTION)
