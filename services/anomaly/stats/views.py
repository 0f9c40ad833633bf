"""``GET /api/v1/stats``: points, anomalies and feedback per account and per detector."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from services.anomaly.deps import ERRORS, LabelQuery, SeriesQuery, Since, Until, pool_of
from services.anomaly.series_api import store as series_store
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
        "Counts the points stored with a timestamp in [since, until), of one series "
        "(`series=`) or of the series with some labels (`label=name=value`, repeatable) "
        "if asked. "
        "`false_positive_rate` = false_positives / (false_positives + confirmed), null when "
        "neither; resolved anomalies count as reviewed but in neither term."
    ),
    response_model=StatsOut,
    response_model_exclude_unset=True,  # `series` only when asked for
    responses=ERRORS,
)
async def stats(
    request: Request,
    caller: Caller,
    since: Since = None,
    until: Until = None,
    detector_id: Annotated[str | None, Query(description="only this detector")] = None,
    series: SeriesQuery = None,
    label: LabelQuery = None,
    by_series: Annotated[
        bool, Query(description="also count each detector's series (`series`, with labels)")
    ] = False,
) -> dict[str, Any]:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        if detector_id is not None:
            await series_store.require_detector(
                conn, account=caller.account_id, detector_id=detector_id
            )
        selected = await series_store.selection(
            conn,
            account=caller.account_id,
            detector_id=detector_id,
            series_id=series,
            label=label,
        )
        rows = await store.stats(
            conn, account=caller.account_id, since=since, until=until, selected=selected
        )
    return {
        "since": since,
        "until": until,
        "account": service.counts_of(rows),
        "detectors": service.per_detector(rows, by_series=by_series),
    }
