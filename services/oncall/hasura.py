"""Hasura action `currentOncall`: POST /hasura/actions/currentOncall.

Hasura calls it with the plugin bearer (a configured header) and its action
payload: `{"action": {"name"}, "input": {"scheduleId", "at"}, "session_variables",
"request_query"}`. The account is the session's `x-hasura-source-account-id`
(an admin session without one acts for `primary`). Errors use Hasura's shape,
`{"message", "extensions": {"code"}}` with a 4xx status, so Hasura passes them
to the client.

The GraphQL types are declared in `hasura/metadata/actions.graphql`;
tests/deploy/test_hasura_handlers.py checks them against the pydantic models
here (`CurrentOncallInput`, `CurrentOncallOutput` and its parts) field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from services.common.auth import require_secret
from services.common.db import tenant_transaction
from services.common.errors import ApiError
from services.common.hasura import hasura_error, session_account
from services.common.instants import Instant
from services.common.responses import hasura_errors
from services.oncall.deps import clock_of
from services.oncall.schedules import service as schedules

router = APIRouter(prefix="/hasura/actions", tags=["hasura"])

ACTION_NAME = "currentOncall"
OUTPUT_TYPE = "CurrentOncallOutput"
PERSON_TYPE = "CurrentOncallPerson"
NEXT_TYPE = "CurrentOncallNext"


class CurrentOncallInput(BaseModel):
    """The action's arguments."""

    model_config = ConfigDict(extra="forbid")
    scheduleId: str = Field(min_length=1, max_length=200)  # noqa: N815 (GraphQL argument name)
    at: Instant | None = None


class ActionName(BaseModel):
    name: str


class ActionPayload(BaseModel):
    """Hasura's action request body."""

    action: ActionName
    input: dict[str, Any] = Field(default_factory=dict)
    session_variables: dict[str, str] = Field(default_factory=dict)
    request_query: str | None = None


class _Output(BaseModel):
    """Built from the REST answer's fields; serialised camelCase, as Hasura exposes them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CurrentOncallPerson(_Output):
    id: str
    name: str | None
    email: str | None


class CurrentOncallNext(_Output):
    person: CurrentOncallPerson | None
    start: datetime


class CurrentOncallOutput(_Output):
    """The action's output type: the REST `Oncall` answer, camelCase."""

    schedule_id: str
    at: datetime
    person: CurrentOncallPerson | None
    source: str | None
    layer: str | None
    override_id: str | None
    shift_start: datetime | None
    shift_end: datetime | None
    next: CurrentOncallNext | None


@router.post(
    "/currentOncall",
    summary="Hasura action: who is on call for a schedule",
    response_model=CurrentOncallOutput,
    responses=hasura_errors(400, 401, 404, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ActionPayload.model_json_schema()}},
        }
    },
)
async def current_oncall(request: Request) -> Any:
    try:
        require_secret(request.headers, request.app.state.settings)
        try:
            payload = ActionPayload.model_validate(await request.json())
            args = CurrentOncallInput.model_validate(payload.input)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            return hasura_error(422, "validation_error", f"{where}: {first['msg']}")
        except ValueError:
            return hasura_error(400, "bad_request", "the body is not JSON")
        if payload.action.name != ACTION_NAME:
            return hasura_error(400, "bad_request", f"unknown action {payload.action.name!r}")
        account = session_account(payload.session_variables)
        at = args.at or clock_of(request)()
        async with tenant_transaction(request.app.state.pool, account) as conn:
            answer = await schedules.oncall_at(conn, schedule_id=args.scheduleId, at=at)
    except ApiError as exc:
        return hasura_error(exc.status, exc.code, exc.message)
    output = CurrentOncallOutput.model_validate(answer.model_dump())
    return JSONResponse(output.model_dump(mode="json", by_alias=True))
