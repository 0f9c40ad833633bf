"""REST routes of anomalies: the list, one anomaly with its neighbours, feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.anomaly.anomalies import service, store
from services.anomaly.anomalies.models import (
    AnomalyDetail,
    AnomalyKind,
    AnomalyOut,
    AnomalyPatch,
)
from services.anomaly.deps import ERRORS, AnomalyId, LabelQuery, SeriesQuery, Since, Until, pool_of
from services.anomaly.fields import FeedbackStatus, Severity
from services.anomaly.series_api import store as series_store
from services.common.auth import Caller
from services.common.db import tenant_transaction
from services.common.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/api/v1")


@router.get(
    "/anomalies",
    tags=["anomalies"],
    summary="Anomalies, newest first",
    response_model=Page[AnomalyOut],
    responses=ERRORS,
)
async def list_anomalies(
    request: Request,
    caller: Caller,
    detector_id: Annotated[str | None, Query(description="only this detector")] = None,
    since: Since = None,
    until: Until = None,
    severity: Annotated[Severity | None, Query()] = None,
    status: Annotated[FeedbackStatus | None, Query(description="feedback status")] = None,
    kind: Annotated[
        AnomalyKind | None, Query(description="`point` or `no_data` (a series gone silent)")
    ] = None,
    series: SeriesQuery = None,
    label: LabelQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        selected = await series_store.selection(
            conn,
            account=caller.account_id,
            detector_id=detector_id,
            series_id=series,
            label=label,
        )
        return await store.list_anomalies(
            conn,
            account=caller.account_id,
            selected=selected,
            since=since,
            until=until,
            severity=severity,
            status=status,
            kind=kind,
            limit=limit,
            cursor=cursor,
        )


@router.get(
    "/anomalies/{anomaly_id}",
    tags=["anomalies"],
    summary="An anomaly: score, expected band, explanation, configuration, neighbours",
    response_model=AnomalyDetail,
    responses=ERRORS,
)
async def get_anomaly(
    request: Request,
    caller: Caller,
    anomaly_id: AnomalyId,
    neighbours: Annotated[
        int, Query(ge=0, le=500, description="points on each side to include")
    ] = 10,
) -> dict[str, Any]:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.get_anomaly(conn, account=caller.account_id, point_id=anomaly_id)
        around = await store.neighbours(
            conn,
            account=caller.account_id,
            detector_id=row["detector_id"],
            series_key=row["series_key"],
            ts=row["ts"],
            count=neighbours,
        )
    return service.anomaly_detail(row, around)


@router.patch(
    "/anomalies/{anomaly_id}",
    tags=["anomalies"],
    summary="Feedback: confirmed, false_positive or resolved (open reopens), and a note",
    response_model=AnomalyOut,
    responses=ERRORS,
)
async def patch_anomaly(
    request: Request, caller: Caller, anomaly_id: AnomalyId, body: AnomalyPatch
) -> dict[str, Any]:
    given = body.model_fields_set
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.set_feedback(
            conn,
            account=caller.account_id,
            point_id=anomaly_id,
            status=body.status,
            note=body.note,
            note_given="note" in given,
        )
    return service.anomaly_out(row)
