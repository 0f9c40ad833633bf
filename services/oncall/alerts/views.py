"""Alert routes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.common.pagination import Cursor, Limit, Page
from services.oncall.alerts import service
from services.oncall.alerts.deps import Actor, PolicyFilter, StatusFilter
from services.oncall.alerts.models import Alert, AlertCreate, AlertDetail
from services.oncall.deps import Account, Now, Tx
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=ERRORS)


@router.post(
    "",
    status_code=201,
    summary="Trigger an alert (200 with the open alert when its dedup_key is already open)",
    response_model=Alert,
    responses={200: {"model": Alert, "description": "deduplicated: nobody is notified again"}},
)
async def create_alert(
    body: AlertCreate, conn: Tx, account: Account, now: Now, response: Response
) -> Alert:
    alert, created = await service.trigger(conn, account=account, body=body, now=now)
    if not created:
        response.status_code = 200
    return alert


@router.get("", summary="List alerts, newest first", response_model=Page[Alert])
async def list_alerts(
    conn: Tx,
    status: StatusFilter = None,
    policy_id: PolicyFilter = None,
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
async def ack_alert(alert_id: str, conn: Tx, account: Account, by: Actor, now: Now) -> Alert:
    return await service.acknowledge(conn, account=account, alert_id=alert_id, by=by, now=now)


@router.post("/{alert_id}/resolve", summary="Resolve (close) the alert", response_model=Alert)
async def resolve_alert(alert_id: str, conn: Tx, account: Account, by: Actor, now: Now) -> Alert:
    return await service.resolve(conn, account=account, alert_id=alert_id, by=by, now=now)
