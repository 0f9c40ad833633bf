"""What both services' Hasura handlers share: the account of a session and Hasura's
error shape ``{"message", "extensions": {"code"}}`` (Hasura passes a 4xx of that
shape on to the GraphQL client)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.common.auth import DEFAULT_ACCOUNT, check_account_id
from services.common.errors import BadRequest, ValidationFailed


def hasura_error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    extensions: dict[str, Any] = {"code": code}
    if details is not None:
        extensions["details"] = details
    return JSONResponse({"message": message, "extensions": extensions}, status_code=status)


def session_account(variables: dict[str, str]) -> str:
    """The session's ``x-hasura-source-account-id``; an admin session without one acts
    for the default account; any other session without one is a 400."""
    lowered = {k.lower(): v for k, v in variables.items()}
    account = lowered.get("x-hasura-source-account-id")
    if account:
        return check_account_id(account)
    if lowered.get("x-hasura-role", "admin") == "admin":
        return DEFAULT_ACCOUNT
    raise BadRequest("the session has no x-hasura-source-account-id")


def validation_failed(exc: ValidationError, prefix: list[str]) -> ValidationFailed:
    """A 422 naming the first invalid field of a payload (``prefix``: where it sits)."""
    errors = exc.errors()
    loc = [*prefix, *(str(p) for p in errors[0].get("loc", ()))]
    details = [
        {"loc": [*prefix, *(str(p) for p in e.get("loc", ()))], "message": e.get("msg")}
        for e in errors
    ]
    return ValidationFailed(f"{'.'.join(loc)}: {errors[0].get('msg')}", details=details)
