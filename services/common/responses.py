"""The OpenAPI side of the errors: the envelope's schema and the standard error
responses, declared once for every route of both services.

A route declares what its own logic answers (``errors(404, 409, ...)``);
``document_standard_responses`` adds, to every operation of an app's OpenAPI
document, what the shared plumbing answers whatever the route: 401 and 400 (the
bearer and the account header, ``common.auth``), 503 with ``Retry-After``
(``common.outage``: the database is unreachable), 413, 415 and 400 for a body
(``common.guard`` and the JSON parser), 422 for parameters (FastAPI's
validation). ``/health``, ``/ready``, ``/metrics`` and ``/auth`` document
themselves (``common.health``, ``common.app``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from services.common.errors import RETRY_AFTER_SECONDS


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    """Every error of the REST routes: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


class HasuraErrorExtensions(BaseModel):
    code: str
    details: Any = None


class HasuraError(BaseModel):
    """Hasura's error shape, which the action and event handlers answer with."""

    message: str
    extensions: HasuraErrorExtensions


DESCRIPTIONS: dict[int, str] = {
    400: "malformed request: a body that is not JSON, an opaque cursor this server did not "
    "issue, or a malformed X-Hasura-Source-Account-Id header",
    401: "missing or invalid bearer",
    403: "the caller may not do this",
    404: "no such resource in this account",
    409: "conflict with the current state",
    413: "request body over the size limit",
    415: "the body is not JSON: its Content-Type is not application/json",
    422: "invalid input (every invalid field listed in details)",
    429: "too many requests; retry after the Retry-After header's seconds",
    503: "the database is unreachable (service_unavailable); retry after Retry-After seconds",
}

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
HASURA_ERROR_REF = "#/components/schemas/HasuraError"

_RETRY_AFTER = {
    "Retry-After": {
        "description": f"seconds to wait before retrying ({RETRY_AFTER_SECONDS})",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "the scheme to authenticate with (Bearer)",
        "schema": {"type": "string"},
    }
}


def errors(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for error statuses, each with the envelope's schema;
    ``descriptions`` (``d409="..."``) replaces the standard text of a status."""
    return {
        status: {
            "model": ErrorEnvelope,
            "description": descriptions.get(f"d{status}", DESCRIPTIONS[status]),
        }
        for status in statuses
    }


def hasura_errors(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """Like ``errors`` for a Hasura handler: its errors have Hasura's shape."""
    return {
        status: {
            "model": HasuraError,
            "description": descriptions.get(f"d{status}", DESCRIPTIONS[status]),
        }
        for status in statuses
    }


def _error_content(path: str) -> dict[str, Any]:
    if path.startswith("/hasura/"):
        # the handler's own errors are Hasura's shape; the guard's and an outage's are
        # the envelope (they answer before the handler or outside it)
        schema: dict[str, Any] = {"anyOf": [{"$ref": HASURA_ERROR_REF}, {"$ref": ENVELOPE_REF}]}
    else:
        schema = {"$ref": ENVELOPE_REF}
    return {"application/json": {"schema": schema}}


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _add(
    responses: dict[str, Any], status: int, path: str, headers: dict[str, Any] | None = None
) -> None:
    entry = responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
    schema = entry.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref") == _FASTAPI_422:
        # FastAPI's own 422 ({"detail": [...]}) is not what the services answer
        entry.update(description=DESCRIPTIONS[status], content=_error_content(path))
    entry.setdefault("content", _error_content(path))
    if headers:
        entry.setdefault("headers", {}).update(headers)


def document_standard_responses(
    schema: dict[str, Any], *, public: frozenset[str], body_methods: frozenset[str]
) -> None:
    """Add the responses every route can give (see the module docstring) to an OpenAPI
    document, in place, and the error schemas they refer to."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorEnvelope", ErrorEnvelope.model_json_schema(ref_template=_REF))
    components.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template=_REF))
    hasura = HasuraError.model_json_schema(ref_template=_REF)
    for name, definition in hasura.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("HasuraError", hasura)
    components["ErrorEnvelope"].pop("$defs", None)
    for path, operations in schema.get("paths", {}).items():
        if path in public:
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            _add(responses, 401, path, _CHALLENGE)
            _add(responses, 400, path)
            _add(responses, 503, path, _RETRY_AFTER)
            if method.upper() in body_methods:
                _add(responses, 413, path)
                _add(responses, 415, path)
            if method.upper() in body_methods or operation.get("parameters"):
                _add(responses, 422, path)
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in json.dumps(schema.get("paths", {})):
            components.pop(unused, None)


_REF = "#/components/schemas/{model}"
