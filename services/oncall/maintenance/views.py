"""Maintenance window routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Account, Now, Tx
from services.oncall.maintenance import service
from services.oncall.maintenance.models import UUID_PATTERN, Window, WindowCreate
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"], responses=ERRORS)


@router.get("", summary="List maintenance windows, in creation order", response_model=Page[Window])
async def list_windows(
    conn: Tx,
    now: Now,
    policy_id: Annotated[str | None, Query(max_length=200)] = None,
    integration_id: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    detector_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Window]:
    return await service.get_all(
        conn,
        policy_id=policy_id,
        integration_id=integration_id,
        detector_id=detector_id,
        limit=limit,
        cursor=cursor,
        now=now,
    )


@router.post(
    "",
    status_code=201,
    summary="Create a maintenance window (in force at once if it has begun: the firing "
    "alerts of its scope are suppressed and their pending notifications cancelled)",
    response_model=Window,
)
async def create_window(body: WindowCreate, conn: Tx, account: Account, now: Now) -> Window:
    return await service.create(conn, account=account, body=body, now=now)


@router.get("/{window_id}", summary="Get a maintenance window", response_model=Window)
async def get_window(window_id: str, conn: Tx, now: Now) -> Window:
    return await service.get(conn, window_id=window_id, now=now)


@router.delete(
    "/{window_id}",
    status_code=204,
    summary="Delete a maintenance window (what it alone suppressed is released now)",
)
async def delete_window(window_id: str, conn: Tx, account: Account, now: Now) -> None:
    await service.delete(conn, account=account, window_id=window_id, now=now)
