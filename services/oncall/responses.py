"""OpenAPI error responses and small request helpers shared by the routes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel

from services.oncall.delivery.destinations import DestinationPolicy


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorEnvelope, "description": "missing or invalid bearer"},
    404: {"model": ErrorEnvelope, "description": "no such resource in this account"},
    409: {"model": ErrorEnvelope, "description": "conflict with the current state"},
    422: {"model": ErrorEnvelope, "description": "invalid fields (all of them listed in details)"},
}


def destination_policy(request: Request) -> DestinationPolicy:
    policy = getattr(request.app.state, "destination_policy", None)
    if policy is None:
        settings = request.app.state.settings
        policy = DestinationPolicy.from_settings(
            settings.allowed_destinations, local_mode=settings.nsentry_local_mode
        )
        request.app.state.destination_policy = policy
    return policy
