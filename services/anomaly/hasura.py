"""Hasura action and event-trigger handlers of nself-anomaly.

Both authenticate with the plugin secret (Hasura sends it as
``Authorization: Bearer <PLUGIN_SECRET>`` through a configured header) and run
the same scoring pipeline as REST ingest.

* ``POST /hasura/actions/scoreAnomalyPoints``: the mutation
  ``scoreAnomalyPoints(points: [AnomalyPointInput!]!): ScoreAnomalyPointsOutput!``.
  The account is the session's ``x-hasura-source-account-id``. Errors answer
  4xx in Hasura's shape ``{"message", "extensions": {"code"}}``.
* ``POST /hasura/events/score``: the event trigger on insert into
  ``np_anomaly_data_points``. The account and detector come from the inserted
  row; every not-yet-scored point of that detector is scored in timestamp
  order, so repeated and out-of-order deliveries are harmless.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Literal

import pydantic_core
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.anomaly import scoring
from services.anomaly.models import MAX_BATCH, Severity, Slug, Value
from services.anomaly.views import pool_of, wake_pager
from services.common.auth import DEFAULT_ACCOUNT, check_account_id, require_secret, settings_of
from services.common.errors import ApiError, BadRequest, PayloadTooLarge, ValidationFailed

log = logging.getLogger("nsentry.anomaly.hasura")
router = APIRouter(prefix="/hasura", tags=["hasura"])

ACTION_NAME = "scoreAnomalyPoints"
POINTS_TABLE = "np_anomaly_data_points"


# -- action types (mirrored by hasura/metadata/actions.graphql) ----------------
class AnomalyPointInput(BaseModel):
    """GraphQL ``input AnomalyPointInput``: one point to score."""

    model_config = ConfigDict(extra="forbid")

    detector_id: Slug = Field(description="GraphQL String!")
    value: Value = Field(description="GraphQL Float!")
    timestamp: AwareDatetime = Field(description="GraphQL timestamptz! (RFC 3339 with offset)")


class ScoreAnomalyPointsInput(BaseModel):
    """The action's arguments, i.e. the payload's ``input``: ``{"points": [...]}``."""

    model_config = ConfigDict(extra="forbid")

    points: list[AnomalyPointInput] = Field(description="GraphQL [AnomalyPointInput!]!")


class ScoredAnomaly(BaseModel):
    """GraphQL ``type ScoredAnomaly``: an anomaly found while scoring."""

    id: int = Field(description="GraphQL bigint! (np_anomaly_data_points.id)")
    detector_id: str = Field(description="String!")
    timestamp: datetime = Field(description="timestamptz!")
    value: float = Field(description="Float!")
    score: float = Field(description="Float!")
    severity: Severity = Field(description="String! (warning | critical)")
    expected: float | None = Field(description="Float")
    lower: float | None = Field(description="Float")
    upper: float | None = Field(description="Float")
    late: bool = Field(description="Boolean!")
    explanation: str = Field(description="String!")
    episode_start: datetime | None = Field(description="timestamptz")


class ScoreAnomalyPointsOutput(BaseModel):
    """GraphQL ``type ScoreAnomalyPointsOutput``."""

    accepted: int = Field(description="Int!")
    duplicates: int = Field(description="Int!")
    late: int = Field(description="Int!")
    anomalies: list[ScoredAnomaly] = Field(description="[ScoredAnomaly!]!")


class ActionName(BaseModel):
    name: str


class ActionPayload(BaseModel):
    """Hasura's action webhook body."""

    action: ActionName
    input: dict[str, Any]
    session_variables: dict[str, str] = Field(default_factory=dict)
    request_query: str | None = None


# -- event types ----------------------------------------------------------------
class EventTable(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(alias="schema")
    name: str


class EventTrigger(BaseModel):
    name: str


class EventData(BaseModel):
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None


class EventBody(BaseModel):
    op: Literal["INSERT", "UPDATE", "DELETE", "MANUAL"]
    data: EventData
    session_variables: dict[str, Any] | None = None
    trace_context: dict[str, Any] | None = None


class EventPayload(BaseModel):
    """Hasura's event trigger webhook body."""

    id: str
    created_at: str
    trigger: EventTrigger
    table: EventTable
    event: EventBody
    delivery_info: dict[str, Any] | None = None


class EventResult(BaseModel):
    event_id: str
    detector_id: str | None
    scored: int = Field(description="points scored by this delivery (0: nothing left to do)")
    late: int
    anomalies: int
    skipped: str | None = Field(
        default=None, description="why nothing was scored (operation, disabled detector)"
    )


# -- helpers ------------------------------------------------------------------
def hasura_error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    extensions: dict[str, Any] = {"code": code}
    if details is not None:
        extensions["details"] = details
    return JSONResponse({"message": message, "extensions": extensions}, status_code=status)


def session_account(variables: dict[str, str]) -> str:
    lowered = {k.lower(): v for k, v in variables.items()}
    account = lowered.get("x-hasura-source-account-id")
    if account:
        return check_account_id(account)
    if lowered.get("x-hasura-role", "admin") == "admin":
        return DEFAULT_ACCOUNT
    raise BadRequest("the session has no x-hasura-source-account-id")


def _validation(exc: ValidationError, prefix: list[str]) -> ValidationFailed:
    errors = exc.errors()
    loc = [*prefix, *(str(p) for p in errors[0].get("loc", ()))]
    details = [
        {"loc": [*prefix, *(str(p) for p in e.get("loc", ()))], "message": e.get("msg")}
        for e in errors
    ]
    return ValidationFailed(f"{'.'.join(loc)}: {errors[0].get('msg')}", details=details)


# -- routes -------------------------------------------------------------------
@router.post(
    f"/actions/{ACTION_NAME}",
    summary="Hasura action scoreAnomalyPoints (mutation)",
    description=(
        "Body: Hasura's action payload (`action.name`, `input`, `session_variables`, "
        "`request_query`) with `input = {points: [AnomalyPointInput]}`. Answers "
        "ScoreAnomalyPointsOutput, or a 4xx `{message, extensions: {code}}`."
    ),
    response_model=ScoreAnomalyPointsOutput,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ActionPayload.model_json_schema()}},
        }
    },
)
async def score_anomaly_points(request: Request) -> Any:
    try:
        require_secret(request.headers, settings_of(request))
        try:
            payload = ActionPayload.model_validate(pydantic_core.from_json(await request.body()))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise _validation(exc, []) from None
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        if payload.action.name != ACTION_NAME:
            raise BadRequest(f"this handler serves {ACTION_NAME}, not {payload.action.name!r}")
        account = session_account(payload.session_variables)
        raw = payload.input.get("points")
        if isinstance(raw, list) and len(raw) > MAX_BATCH:
            raise PayloadTooLarge(f"{len(raw)} points in one call; at most {MAX_BATCH}")
        try:
            args = ScoreAnomalyPointsInput.model_validate(payload.input)
        except ValidationError as exc:
            raise _validation(exc, ["input"]) from None
        outcome = await scoring.ingest(
            pool_of(request),
            account,
            args.points,
            batch=True,
            unknown_is_404=True,
            on_pages=wake_pager(request),
        )
    except ApiError as exc:
        return hasura_error(exc.status, exc.code, exc.message, exc.details)
    return ScoreAnomalyPointsOutput.model_validate(outcome.as_dict())


@router.post(
    "/events/score",
    summary="Hasura event trigger: score the not-yet-scored points of the row's detector",
    description=(
        "Body: Hasura's event payload (`id`, `created_at`, `trigger.name`, `table`, "
        "`event.op`, `event.data.old/new`, `event.session_variables`, `delivery_info`). "
        "INSERT and MANUAL events score; other operations are acknowledged and ignored."
    ),
    response_model=EventResult,
    responses={401: {"description": "not the plugin secret"}, 404: {"description": "detector"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventPayload.model_json_schema()}},
        }
    },
)
async def score_event(request: Request) -> EventResult:
    require_secret(request.headers, settings_of(request))
    try:
        payload = EventPayload.model_validate(json.loads(await request.body()))
    except ValidationError as exc:
        raise _validation(exc, ["body"]) from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if payload.table.name != POINTS_TABLE:
        raise BadRequest(
            f"this trigger handles {POINTS_TABLE}, not {payload.table.schema_}.{payload.table.name}"
        )
    row = payload.event.data.new
    if payload.event.op not in ("INSERT", "MANUAL") or row is None:
        return EventResult(
            event_id=payload.id,
            detector_id=None,
            scored=0,
            late=0,
            anomalies=0,
            skipped=f"operation {payload.event.op}",
        )
    account = row.get("source_account_id")
    detector_id = row.get("detector_id")
    if not isinstance(account, str) or not isinstance(detector_id, str):
        raise ValidationFailed(
            "event.data.new needs source_account_id and detector_id",
            details={"columns": sorted(row)},
        )
    account = check_account_id(account)
    outcome = await scoring.score_pending(
        pool_of(request), account, detector_id, on_pages=wake_pager(request)
    )
    if outcome is None:
        return EventResult(
            event_id=payload.id,
            detector_id=detector_id,
            scored=0,
            late=0,
            anomalies=0,
            skipped="detector disabled",
        )
    return EventResult(
        event_id=payload.id,
        detector_id=detector_id,
        scored=outcome.accepted,
        late=outcome.late,
        anomalies=len(outcome.anomalies),
    )
