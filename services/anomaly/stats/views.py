"""``GET /api/v1/stats``: points, anomalies and feedback per account and per detector."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.anomaly.deps import ERRORS, Since, Until, pool_of
from services.anomaly.detectors_api import store as detector_store
from services.anomaly.stats import service, store
from services.anomaly.stats.models import StatsOut
from services.common.auth import Caller
from services.common.db import tenant_transaction

router = APIRouter(prefix="/api/v1")


@router.get(
    "/stats",
    tags=["anomalies"],
    summary="Points, anomalies, severities and feedback per account and per detector",
    description=(
        "Counts the points stored with a timestamp in [since, until). "
        "`false_positive_rate` = false_positives / (false_positives + confirmed), null when "
        "neither; resolved anomalies count as reviewed but in neither term."
    ),
    response_model=StatsOut,
    responses=ERRORS,
)
async def stats(
    request: Request,
    caller: Caller,
    since: Since = None,
    until: Until = None,
    detector_id: Annotated[str | None, Query(description="only this detector")] = None,
) -> dict[str, Any]:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        if detector_id is not None:
            await detector_store.get_detector(
                conn, account=caller.account_id, detector_id=detector_id
            )
        rows = await store.stats(
            conn, account=caller.account_id, since=since, until=until, detector_id=detector_id
        )
    return {
        "since": since,
        "until": until,
        "account": service.counts_of(rows),
        "detectors": [{"detector_id": r["detector_id"], **service.counts_of([r])} for r in rows],
    }
