"""OpenAPI error responses of the on-call routes (the shared ones are in
``services.common.responses``)."""

from __future__ import annotations

from typing import Any

from services.common.responses import errors

ERRORS: dict[int | str, dict[str, Any]] = errors(404, 409, 422)
