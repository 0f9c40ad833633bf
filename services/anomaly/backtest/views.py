"""``POST /api/v1/detectors/{id}/backtest``: proposed settings over a series; stores nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from services.anomaly.backtest import service, store
from services.anomaly.backtest.models import MAX_BACKTEST, BacktestIn, BacktestOut
from services.anomaly.deps import ERRORS, DetectorId, pool_of
from services.anomaly.detectors_api import store as detector_store
from services.anomaly.detectors_api.service import check_config
from services.anomaly.series import series_key
from services.common.auth import Caller
from services.common.db import tenant_transaction
from services.common.errors import PayloadTooLarge

router = APIRouter(prefix="/api/v1")


@router.post(
    "/detectors/{detector_id}/backtest",
    tags=["detectors"],
    summary="Score a series or the stored history with proposed settings; stores nothing",
    description=(
        "Without `points`, the detector's stored history (the newest 100,000 points in "
        "`since`/`until`) is scored from scratch. Returns per-point scores (unless "
        "`include_points` is false) and the anomalies and episodes it would have raised."
    ),
    response_model=BacktestOut,
    responses={**ERRORS, 413: {"description": "over 100,000 points"}},
)
async def backtest(
    request: Request, caller: Caller, detector_id: DetectorId, body: BacktestIn
) -> dict[str, Any]:
    if body.points is not None and len(body.points) > MAX_BACKTEST:
        raise PayloadTooLarge(f"at most {MAX_BACKTEST} points", details={"max": MAX_BACKTEST})
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await detector_store.get_detector(
            conn, account=caller.account_id, detector_id=detector_id
        )
        history = None
        if body.points is None:
            history = await store.history(
                conn,
                account=caller.account_id,
                detector_id=detector_id,
                series_key=series_key(body.labels, row["group_by"]),
                since=body.since,
                until=body.until,
                limit=MAX_BACKTEST,
            )
    params, thresholds, _ = check_config(
        body.algorithm or row["algorithm"],
        body.params if body.params is not None else row["params"],
        body.thresholds if body.thresholds is not None else row["thresholds"],
    )
    if history is not None:
        timestamps = [r["ts"] for r in history]
        values = [r["value"] for r in history]
    else:
        assert body.points is not None
        timestamps, values = service.in_time_order(body.points)
    return await asyncio.to_thread(
        service.backtest,
        algorithm=body.algorithm or row["algorithm"],
        params=params,
        thresholds=thresholds,
        timestamps=timestamps,
        values=values,
        include_points=body.include_points,
    )
