"""Override routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Tx
from services.oncall.overrides import service
from services.oncall.overrides.models import Override, OverrideCreate
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/overrides", tags=["overrides"], responses=ERRORS)


@router.get("", summary="List overrides overlapping a range", response_model=Page[Override])
async def list_overrides(
    conn: Tx,
    schedule_id: Annotated[str | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
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
async def delete_override(override_id: str, conn: Tx) -> Response:
    await service.delete(conn, override_id=override_id)
    return Response(status_code=204)
