"""Override routes."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Tx
from services.oncall.overrides import service
from services.oncall.overrides.deps import ScheduleFilter, Since, Until
from services.oncall.overrides.models import Override, OverrideCreate
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/overrides", tags=["overrides"], responses=ERRORS)


@router.get("", summary="List overrides overlapping a range", response_model=Page[Override])
async def list_overrides(
    conn: Tx,
    schedule_id: ScheduleFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Override]:
    return await service.get_all(
        conn, schedule_id=schedule_id, since=since, until=until, limit=limit, cursor=cursor
    )


@router.post("", status_code=201, summary="Create an override", response_model=Override)
async def create_override(body: OverrideCreate, conn: Tx) -> Override:
    return await service.create(conn, body=body)


@router.get("/{override_id}", summary="Get an override", response_model=Override)
async def get_override(override_id: str, conn: Tx) -> Override:
    return await service.get(conn, override_id=override_id)


@router.delete("/{override_id}", status_code=204, summary="Delete an override")
async def delete_override(override_id: str, conn: Tx) -> None:
    await service.delete(conn, override_id=override_id)
