"""Integration routes: keys (plugin bearer or JWT, like every resource) and the inbound
routes, which take only the key (see `deps.py`)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from services.common.errors import BadRequest, ValidationFailed, error_details
from services.common.guard import is_json
from services.common.pagination import Cursor, Limit, Page
from services.common.responses import errors
from services.oncall.deps import Now, Tx
from services.oncall.integrations import payloads, service
from services.oncall.integrations.deps import (
    Inbound,
    InboundAlertmanager,
    InboundGeneric,
    InboundGrafana,
    InboundHeartbeat,
)
from services.oncall.integrations.models import (
    AlertmanagerPayload,
    GenericAlert,
    GrafanaPayload,
    InboundAnswer,
    InboundResult,
    Integration,
    IntegrationCreate,
    IntegrationCreated,
    IntegrationType,
)
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])
INBOUND_ERRORS = errors(
    401,
    403,
    409,
    422,
    d401="missing, wrong or deleted integration key",
    d403="the key is another type's (the message names its route)",
    d409="the key's escalation policy no longer exists",
)
_FORM = "application/x-www-form-urlencoded"
_GENERIC_SCHEMA = GenericAlert.model_json_schema()
_GENERIC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": _GENERIC_SCHEMA},
            _FORM: {"schema": _GENERIC_SCHEMA},
        },
    }
}


def _refused(exc: payloads.Refused, head: str = "body") -> ValidationFailed:
    details = [{"loc": [head, exc.field], "message": exc.message, "type": "value_error"}]
    return ValidationFailed(f"{head}.{exc.field}: {exc.message}", details=details)


# --- inbound (the key only) ------------------------------------------------------------


@router.post(
    "/generic",
    status_code=201,
    summary="Open (201), deduplicate (200) or close (200, action=close) an alert: JSON, "
    "form fields or query parameters",
    response_model=InboundResult,
    responses={
        200: {"model": InboundResult, "description": "deduplicated or closed"},
        **INBOUND_ERRORS,
    },
    openapi_extra=_GENERIC_BODY,
)
async def inbound_generic(
    request: Request,
    key: InboundGeneric,
    now: Now,
    response: Response,
    summary: Annotated[str | None, Query(max_length=1024)] = None,
    details: Annotated[str | None, Query(max_length=65536)] = None,
    dedup: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    action: Annotated[str | None, Query(pattern="^close$")] = None,
    severity: Annotated[str | None, Query(pattern="^(critical|error|warning|info)$")] = None,
) -> InboundResult:
    given = {"summary": summary, "details": details, "dedup": dedup, "action": action}
    fields: dict[str, Any] = {k: v for k, v in {**given, "severity": severity}.items() if v}
    fields.update(await _generic_body(request))
    try:
        body = GenericAlert.model_validate(fields)
        event = payloads.generic(body, key.integration["severity"])
    except ValidationError as exc:
        details_ = error_details(exc.errors(), head=("body",))
        raise ValidationFailed(
            f"{'.'.join(details_[0]['loc'])}: {details_[0]['message']}", details=details_
        ) from None
    except payloads.Refused as exc:
        raise _refused(exc) from None
    [result] = await _apply(key, [event], now)
    if result.action not in ("opened", "suppressed"):
        response.status_code = 200
    return result


async def _generic_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    media = request.headers.get("content-type", "").encode("latin-1")
    if is_json(media):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValidationFailed(
                "body: expected an object",
                details=[{"loc": ["body"], "message": "expected an object", "type": "type_error"}],
            )
        return parsed
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=False))
    except UnicodeDecodeError:
        raise BadRequest("the form body is not UTF-8") from None


async def _apply(key: Inbound, events: list[payloads.Event], now: Any) -> list[InboundResult]:
    return await service.apply(
        key.conn, account=key.account, integration=key.integration, events=events, now=now
    )


def _prometheus(
    key: Inbound, payload: AlertmanagerPayload, title: str | None
) -> list[payloads.Event]:
    try:
        return payloads.prometheus(
            payload,
            dedup=key.integration["settings"].get("dedup", "fingerprint"),
            default_severity=key.integration["severity"],
            fallback_title=title,
        )
    except payloads.Refused as exc:
        raise _refused(exc) from None


@router.post(
    "/alertmanager",
    summary="Alertmanager's webhook (version 4): firing alerts open, resolved ones close",
    response_model=InboundAnswer,
    responses=INBOUND_ERRORS,
)
async def inbound_alertmanager(
    payload: AlertmanagerPayload, key: InboundAlertmanager, now: Now
) -> InboundAnswer:
    return InboundAnswer(results=await _apply(key, _prometheus(key, payload, None), now))


@router.post(
    "/grafana",
    summary="Grafana alerting's webhook contact point: firing alerts open, resolved ones close",
    response_model=InboundAnswer,
    responses=INBOUND_ERRORS,
)
async def inbound_grafana(payload: GrafanaPayload, key: InboundGrafana, now: Now) -> InboundAnswer:
    return InboundAnswer(results=await _apply(key, _prometheus(key, payload, payload.title), now))


@router.post(
    "/heartbeat",
    summary="A heartbeat ping: sets the next deadline; resolves a missed-heartbeat alert",
    response_model=InboundAnswer,
    responses=INBOUND_ERRORS,
)
async def inbound_heartbeat(key: InboundHeartbeat, now: Now) -> InboundAnswer:
    results = await service.ping(
        key.conn, account=key.account, integration=key.integration, now=now
    )
    return InboundAnswer(results=results)


# --- keys (the account's bearer) ---------------------------------------------------------


@router.get(
    "",
    summary="List integration keys (never their tokens)",
    response_model=Page[Integration],
    responses=ERRORS,
)
async def list_integrations(
    conn: Tx,
    policy_id: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[IntegrationType | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Integration]:
    return await service.get_all(conn, policy_id=policy_id, type=type, limit=limit, cursor=cursor)


@router.post(
    "",
    status_code=201,
    summary="Create an integration key: the token and its URL are shown once, here",
    response_model=IntegrationCreated,
    responses=ERRORS,
)
async def create_integration(
    body: IntegrationCreate, conn: Tx, now: Now, request: Request
) -> IntegrationCreated:
    settings = request.app.state.settings
    return await service.create(
        conn,
        body=body,
        now=now,
        base_url=settings.public_url or str(request.base_url),
        email_domain=settings.inbound_email_domain,
    )


# Ids are UUIDs: `/{integration_id:uuid}` leaves the inbound paths (`/heartbeat`,
# `/generic`...) to their own routes, so a GET there is a 405 with `Allow: POST`, not
# "no integration 'heartbeat'"
@router.get(
    "/{integration_id:uuid}",
    summary="Get an integration key",
    response_model=Integration,
    responses=ERRORS,
)
async def get_integration(integration_id: uuid.UUID, conn: Tx) -> Integration:
    return await service.get(conn, integration_id=str(integration_id))


@router.delete(
    "/{integration_id:uuid}",
    status_code=204,
    summary="Delete an integration key: it stops working at once (its alerts stay)",
    responses=ERRORS,
)
async def delete_integration(integration_id: uuid.UUID, conn: Tx) -> None:
    await service.delete(conn, integration_id=str(integration_id))
