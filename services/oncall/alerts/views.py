"""Alert routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.common.auth import Caller, Principal
from services.common.pagination import Cursor, Limit, Page
from services.oncall.alerts import service
from services.oncall.alerts.models import Alert, AlertCreate, AlertDetail, Status
from services.oncall.deps import Now, Tx
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=ERRORS)


def _who(caller: Principal) -> str:
    return caller.user_id or f"role:{caller.role}"


@router.post(
    "",
    status_code=201,
    summary="Trigger an alert (200 with the open alert when its dedup_key is already open)",
    response_model=Alert,
    responses={200: {"model": Alert, "description": "deduplicated: nobody is notified again"}},
)
async def create_alert(
    body: AlertCreate, conn: Tx, caller: Caller, now: Now, response: Response
) -> Alert:
    alert, created = await service.trigger(conn, account=caller.account_id, body=body, now=now)
    if not created:
        response.status_code = 200
    return alert


@router.get("", summary="List alerts, newest first", response_model=Page[Alert])
async def list_alerts(
    conn: Tx,
    status: Annotated[Status | None, Query()] = None,
    policy_id: Annotated[str | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Alert]:
    return await service.get_all(
        conn, status=status, policy_id=policy_id, limit=limit, cursor=cursor
    )


@router.get(
    "/{alert_id}",
    summary="An alert with its timeline and notifications",
    response_model=AlertDetail,
)
async def get_alert(alert_id: str, conn: Tx) -> AlertDetail:
    return await service.get_detail(conn, alert_id=alert_id)


@router.post(
    "/{alert_id}/ack",
    summary="Acknowledge: stop escalating and cancel pending notifications",
    response_model=Alert,
)
async def ack_alert(alert_id: str, conn: Tx, caller: Caller, now: Now) -> Alert:
    return await service.acknowledge(
        conn, account=caller.account_id, alert_id=alert_id, by=_who(caller), now=now
    )


@router.post("/{alert_id}/resolve", summary="Resolve (close) the alert", response_model=Alert)
async def resolve_alert(alert_id: str, conn: Tx, caller: Caller, now: Now) -> Alert:
    return await service.resolve(
        conn, account=caller.account_id, alert_id=alert_id, by=_who(caller), now=now
    )
