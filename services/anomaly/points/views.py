"""``GET /api/v1/detectors/{detector_id}/points``: parse, call, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.anomaly.deps import ERRORS, DetectorId, Since, Until, pool_of
from services.anomaly.points import service
from services.anomaly.points.models import PointsOut
from services.anomaly.points.series import PATTERN, parse_labels
from services.common.auth import Caller
from services.common.db import tenant_transaction

router = APIRouter(prefix="/api/v1")


@router.get(
    "/detectors/{detector_id}/points",
    tags=["detectors"],
    summary="Stored points with score, band and anomaly flag, decimated for a chart",
    description=(
        "The detector's points with a timestamp in [since, until) (default: the 24 hours "
        "before `until`, which defaults to now), oldest first. When more are stored than "
        "`max_points`, the answer keeps every anomaly and, of the other points, the first, "
        "the last and the lowest and highest of each of equal-count buckets, so a chart "
        "of it keeps every spike and dip. `labels` names one series exactly (`name=value` "
        "pairs, comma-separated; empty: the series without labels); without it, the "
        "detector's first series (a plain detector's only one). The answer's `labels` "
        "says which series it is. "
        "A range with `since` not before `until` holds no point."
    ),
    response_model=PointsOut,
    responses=ERRORS,
)
async def detector_points(
    request: Request,
    caller: Caller,
    detector_id: DetectorId,
    since: Since = None,
    until: Until = None,
    labels: Annotated[
        str | None,
        Query(
            description="the series: its labels as name=value pairs, comma-separated",
            max_length=4096,
            pattern=PATTERN,
        ),
    ] = None,
    max_points: Annotated[
        int,
        Query(
            ge=10,
            le=service.MAX_MAX_POINTS,
            description="at most this many points (default 2,000); anomalies always kept",
        ),
    ] = service.DEFAULT_MAX_POINTS,
) -> dict[str, Any]:
    selector = parse_labels(labels)
    start, end = service.window(since, until, request.app.state.clock())
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        return await service.points(
            conn,
            account=caller.account_id,
            detector_id=detector_id,
            selector=selector,
            since=start,
            until=end,
            max_points=max_points,
        )
