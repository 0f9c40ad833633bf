"""``GET /api/v1/detectors/{id}/series``: the series a detector watches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.anomaly.deps import ERRORS, DetectorId, LabelQuery, pool_of
from services.anomaly.series_api import store
from services.anomaly.series_api.models import SeriesOut
from services.common.auth import Caller
from services.common.db import tenant_transaction
from services.common.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

router = APIRouter(prefix="/api/v1")


@router.get(
    "/detectors/{detector_id}/series",
    tags=["detectors"],
    summary="A detector's series: labels, status, last point and counts, oldest first",
    response_model=Page[SeriesOut],
    responses=ERRORS,
)
async def list_series(
    request: Request,
    caller: Caller,
    detector_id: DetectorId,
    label: LabelQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    labels = store.label_filter(label)
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        await store.require_detector(conn, account=caller.account_id, detector_id=detector_id)
        return await store.list_series(
            conn,
            account=caller.account_id,
            detector_id=detector_id,
            labels=labels,
            limit=limit,
            cursor=cursor,
        )
