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
from typing import Any

import pydantic_core
from fastapi import APIRouter, Request
from pydantic import ValidationError

from services.anomaly.deps import ingestor_of
from services.anomaly.hasura.models import (
    ActionPayload,
    EventPayload,
    EventResult,
    ScoreAnomalyPointsInput,
    ScoreAnomalyPointsOutput,
)
from services.anomaly.ingest.models import MAX_BATCH
from services.common.auth import check_account_id, require_secret, settings_of
from services.common.errors import ApiError, BadRequest, PayloadTooLarge, ValidationFailed
from services.common.hasura import hasura_error, session_account, validation_failed
from services.common.responses import errors, hasura_errors

router = APIRouter(prefix="/hasura", tags=["hasura"])

ACTION_NAME = "scoreAnomalyPoints"
POINTS_TABLE = "np_anomaly_data_points"


@router.post(
    f"/actions/{ACTION_NAME}",
    summary="Hasura action scoreAnomalyPoints (mutation)",
    description=(
        "Body: Hasura's action payload (`action.name`, `input`, `session_variables`, "
        "`request_query`) with `input = {points: [AnomalyPointInput]}`. Answers "
        "ScoreAnomalyPointsOutput, or a 4xx `{message, extensions: {code}}`."
    ),
    response_model=ScoreAnomalyPointsOutput,
    responses=hasura_errors(
        400, 401, 404, 409, 413, 422, d404="unknown detector", d409="detector disabled"
    ),
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
                raise validation_failed(exc, []) from None
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
            raise validation_failed(exc, ["input"]) from None
        outcome = await ingestor_of(request).ingest(
            account, args.points, batch=True, unknown_is_404=True
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
    responses=errors(400, 401, 404, 422, d401="not the plugin secret", d404="no such detector"),
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
        raise validation_failed(exc, ["body"]) from None
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
    outcome = await ingestor_of(request).score_pending(account, detector_id)
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
