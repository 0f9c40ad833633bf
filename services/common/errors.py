"""Typed API errors and the one error envelope every failure is answered with."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("nsentry.errors")


class ApiError(Exception):
    """An error with its HTTP status, a stable code and details for the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(Unavailable):
    """503 ``service_unavailable`` with ``Retry-After``: the database cannot be reached
    (``common.outage`` says which failures mean that, and logs them)."""

    status, code = 503, "service_unavailable"

    def __init__(self, kind: str, *, in_doubt: bool = False) -> None:
        # in_doubt: the connection was lost while COMMIT was on its way, so the
        # transaction may have been stored (all of it) or not (none of it)
        details: dict[str, Any] = {"reason": kind}
        if in_doubt:
            details["stored"] = "unknown"
        super().__init__(
            "the database went away during the commit: the request may have been stored "
            "(all of it, or nothing); retry later"
            if in_doubt
            else "the database is unavailable; retry later",
            details=details,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
        self.kind = kind
        self.in_doubt = in_doubt


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def invalid_field(where: str, message: str) -> ValidationFailed:
    """A 422 naming a field of the body (``where``: a dotted path such as ``points.3.value``)."""
    details = [{"loc": ["body", *where.split(".")], "message": message, "type": "invalid"}]
    return ValidationFailed(f"{where}: {message}", details=details)


def envelope(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


def error_details(
    errors: Iterable[Mapping[str, Any]], *, head: Sequence[str] = (), drop: int = 0
) -> list[dict[str, Any]]:
    """Pydantic's errors as the envelope's details: `loc` (``head``, then the error's own
    location without its first ``drop`` parts), `message` and `type`."""
    return [
        {
            "loc": [*head, *(str(part) for part in tuple(error.get("loc", ()))[drop:])],
            "message": str(error.get("msg", "invalid")),
            "type": error.get("type"),
        }
        for error in errors
    ]


def exception_response(exc: Exception, where: str) -> JSONResponse:
    """The envelope for an exception a route raised (``where``: method and path, for the
    log): an ``ApiError`` as itself, a refused value as 422, a database outage as 503
    ``service_unavailable`` (logged once per kind per interval), anything else as a
    logged 500.
    """
    from services.common.outage import outages, unavailable  # it builds on this module

    down = unavailable(exc)
    if down is not None:
        outages.report(down.kind, where, exc if exc is not down else down.__cause__)
        exc = down
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, REFUSED_VALUES):
        return refused_value_response(exc)
    # the trace goes to the log, never to the client
    log.exception("unhandled error on %s", where)
    return error_response(500, "internal", "internal server error")


async def _route_error(request: Request, exc: Exception) -> JSONResponse:
    return exception_response(exc, f"{request.method} {request.url.path}")


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = error_details(exc.errors())
    where = ".".join(details[0]["loc"]) if details else "request"
    first = details[0]["message"] if details else "invalid request"
    return error_response(422, "validation_error", f"{where}: {first}", details)


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route"
    return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))


# Input the models let through but Postgres or the calendar refuses (a NUL character,
# a number or date out of range, a null where a value is required): the client's
# input, so a 422; the transaction it ran in has rolled back, nothing is half written.
REFUSED_VALUES: tuple[type[Exception], ...] = (
    asyncpg.DataError,
    asyncpg.NotNullViolationError,
    OverflowError,
)


def refused_value_response(exc: Exception) -> JSONResponse:
    return error_response(
        422, "validation_error", "a value cannot be stored", {"reason": str(exc)[:200]}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _route_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for refused in REFUSED_VALUES:
        app.add_exception_handler(refused, _route_error)
    app.add_exception_handler(Exception, _route_error)
