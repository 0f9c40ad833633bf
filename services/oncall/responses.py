"""OpenAPI error responses shared by the routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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
