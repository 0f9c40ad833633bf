"""REST routes of nself-anomaly: parse, call, answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime

from services.anomaly import scoring, service, store
from services.anomaly.models import (
    MAX_BACKTEST,
    MAX_BATCH,
    AnomalyDetail,
    AnomalyOut,
    AnomalyPatch,
    BacktestIn,
    BacktestOut,
    DetectorCreate,
    DetectorOut,
    DetectorPatch,
    FeedbackStatus,
    IngestResult,
    PointIn,
    Severity,
    StatsOut,
)
from services.common.auth import Caller
from services.common.db import tenant_transaction
from services.common.errors import BadRequest, PayloadTooLarge, ValidationFailed
from services.common.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    page_of,
)

router = APIRouter(prefix="/api/v1")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer"},
    404: {"description": "no such resource in this account"},
    422: {"description": "invalid input; the message names the field (and point index)"},
}
DetectorId = Annotated[str, Path(description="detector slug", examples=["api-latency"])]
Since = Annotated[AwareDatetime | None, Query(description="from (inclusive), RFC 3339")]
Until = Annotated[AwareDatetime | None, Query(description="before (exclusive), RFC 3339")]


def pool_of(request: Request) -> Any:
    return request.app.state.pool


def wake(app: Any) -> None:
    """Tell the paging sender (if it runs) that pages are queued."""
    event = getattr(app.state, "page_wakeup", None)
    if event is not None:
        event.set()


def wake_pager(request: Request) -> Any:
    return lambda: wake(request.app)


_point_schema = PointIn.model_json_schema()
_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _point_schema,
                        {
                            "type": "object",
                            "title": "Batch",
                            "required": ["points"],
                            "additionalProperties": False,
                            "properties": {
                                "points": {
                                    "type": "array",
                                    "maxItems": MAX_BATCH,
                                    "items": _point_schema,
                                }
                            },
                        },
                    ]
                },
                "examples": {
                    "single": {
                        "value": {
                            "detector_id": "api-latency",
                            "value": 182.4,
                            "timestamp": "2026-11-23T09:00:00Z",
                        }
                    },
                    "batch": {
                        "value": {
                            "points": [
                                {
                                    "detector_id": "api-latency",
                                    "value": 182.4,
                                    "timestamp": "2026-11-23T09:00:00Z",
                                },
                                {
                                    "detector_id": "queue-depth",
                                    "value": 12,
                                    "timestamp": "2026-11-23T09:00:00+01:00",
                                },
                            ]
                        }
                    },
                },
            }
        },
    }
}


# -- ingest -------------------------------------------------------------------
@router.post(
    "/ingest",
    tags=["ingest"],
    summary="Store and score points (one, or a batch of up to 10,000)",
    description=(
        "Validated as a whole: one bad point rejects the batch with 422 naming its index "
        "and nothing is written. More than 10,000 points: 413. Unknown detector: 404 (422 "
        "naming the index in a batch); disabled detector: 409. A point whose detector and "
        "timestamp are already stored is ignored and counted as a duplicate; a point older "
        "than its detector's latest is stored, scored against the current model without "
        "updating it, and marked late. Scoring is synchronous: the response lists the "
        "anomalies found."
    ),
    response_model=IngestResult,
    openapi_extra=_INGEST_BODY,
    responses={**_ERRORS, 409: {"description": "detector disabled"}, 413: {"description": "over"}},
)
async def ingest(request: Request, caller: Caller) -> Response:
    return await _ingest(request, caller.account_id)


async def _ingest(request: Request, account: str) -> Response:
    points, batch = service.parse_ingest(await request.body())
    single = getattr(request.app.state, "single_ingest", None)
    if not batch and single is not None:  # group commit with concurrent single points
        outcome = await single.submit(account, points[0])
    else:
        outcome = await scoring.ingest(
            pool_of(request), account, points, batch=batch, on_pages=wake_pager(request)
        )
    return Response(content=service.ingest_result_json(outcome), media_type="application/json")


# -- detectors ----------------------------------------------------------------
@router.get(
    "/detectors",
    tags=["detectors"],
    summary="List detectors with status and counters",
    response_model=Page[DetectorOut],
    responses=_ERRORS,
)
async def list_detectors(
    request: Request, caller: Caller, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[dict[str, Any]]:
    position = decode_cursor(cursor, arity=1)
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        rows = await store.list_detectors(
            conn,
            account=caller.account_id,
            limit=limit,
            after=str(position[0]) if position else None,
        )
    page = page_of(rows, limit, key=lambda r: [r["id"]])
    return Page(data=[service.detector_out(r) for r in page.data], next_cursor=page.next_cursor)


@router.post(
    "/detectors",
    tags=["detectors"],
    status_code=201,
    summary="Create a detector",
    description=(
        "The algorithm's params and the thresholds are validated (422 naming the field) and "
        "stored normalised (defaults filled in). `auto` is the default algorithm."
    ),
    response_model=DetectorOut,
    responses={**_ERRORS, 409: {"description": "a detector with this id exists"}},
)
async def create_detector(request: Request, caller: Caller, body: DetectorCreate) -> dict[str, Any]:
    params, thresholds, warmup = service.check_config(body.algorithm, body.params, body.thresholds)
    values = {
        "id": body.id or service.generate_id(body.name),
        "name": body.name,
        "description": body.description,
        "metric_source": body.metric_source.model_dump(),
        "algorithm": body.algorithm,
        "params": params,
        "thresholds": thresholds,
        "escalation_policy_id": body.escalation_policy_id,
        "enabled": body.enabled,
        "warmup": warmup,
    }
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.insert_detector(conn, account=caller.account_id, values=values)
    return service.detector_out(row)


@router.get(
    "/detectors/{detector_id}",
    tags=["detectors"],
    summary="A detector: configuration, status (learning/active/disabled), last point, counts",
    response_model=DetectorOut,
    responses=_ERRORS,
)
async def get_detector(request: Request, caller: Caller, detector_id: DetectorId) -> dict[str, Any]:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.get_detector(conn, account=caller.account_id, detector_id=detector_id)
    return service.detector_out(row)


@router.patch(
    "/detectors/{detector_id}",
    tags=["detectors"],
    summary="Update thresholds, name, params, enabled or escalation policy",
    description=(
        "Changing `algorithm` or `params` restarts learning (status goes back to `learning`); "
        "changing thresholds keeps what the model learned. `escalation_policy_id: null` "
        "stops paging."
    ),
    response_model=DetectorOut,
    responses=_ERRORS,
)
async def patch_detector(
    request: Request, caller: Caller, detector_id: DetectorId, body: DetectorPatch
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for key in (
        "name",
        "description",
        "algorithm",
        "params",
        "thresholds",
        "enabled",
        "metric_source",
    ):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key}: may not be null", details={"field": key})
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.get_detector(
            conn, account=caller.account_id, detector_id=detector_id, for_update=True
        )
        model_changed = ("algorithm" in changes and changes["algorithm"] != row["algorithm"]) or (
            "params" in changes
        )
        warmup = None
        if {"algorithm", "params", "thresholds"} & changes.keys():
            params, thresholds, warmup = service.check_config(
                changes.get("algorithm", row["algorithm"]),
                changes.get("params", row["params"]),
                changes.get("thresholds", row["thresholds"]),
            )
            if "params" in changes or "algorithm" in changes:
                model_changed = model_changed or params != row["params"]
                changes["params"] = params
            if "thresholds" in changes:
                changes["thresholds"] = thresholds
        if not model_changed:
            warmup = None
            changes.pop("params", None)
            changes.pop("algorithm", None)
        row = await store.update_detector(
            conn,
            account=caller.account_id,
            detector_id=detector_id,
            changes=changes,
            reset_model=model_changed,
            warmup=warmup,
        )
    return service.detector_out(row)


@router.delete(
    "/detectors/{detector_id}",
    tags=["detectors"],
    status_code=204,
    summary="Delete a detector and all its points",
    responses=_ERRORS,
)
async def delete_detector(request: Request, caller: Caller, detector_id: DetectorId) -> Response:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        await store.delete_detector(conn, account=caller.account_id, detector_id=detector_id)
    return Response(status_code=204)


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
    responses={**_ERRORS, 413: {"description": "over 100,000 points"}},
)
async def backtest(
    request: Request, caller: Caller, detector_id: DetectorId, body: BacktestIn
) -> dict[str, Any]:
    if body.points is not None and len(body.points) > MAX_BACKTEST:
        raise PayloadTooLarge(f"at most {MAX_BACKTEST} points", details={"max": MAX_BACKTEST})
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.get_detector(conn, account=caller.account_id, detector_id=detector_id)
        history = None
        if body.points is None:
            history = await store.history(
                conn,
                account=caller.account_id,
                detector_id=detector_id,
                since=body.since,
                until=body.until,
                limit=MAX_BACKTEST,
            )
    params, thresholds, _ = service.check_config(
        body.algorithm or row["algorithm"],
        body.params if body.params is not None else row["params"],
        body.thresholds if body.thresholds is not None else row["thresholds"],
    )
    if history is not None:
        timestamps = [r["ts"] for r in history]
        values = [r["value"] for r in history]
    else:
        assert body.points is not None
        order = sorted(range(len(body.points)), key=lambda i: body.points[i].timestamp)
        for a, b in zip(order, order[1:], strict=False):
            if body.points[a].timestamp == body.points[b].timestamp:
                raise service.invalid(f"points.{b}.timestamp", "repeats an earlier timestamp")
        timestamps = [body.points[i].timestamp.astimezone(UTC) for i in order]
        values = [body.points[i].value for i in order]
    return await asyncio.to_thread(
        service.backtest,
        algorithm=body.algorithm or row["algorithm"],
        params=params,
        thresholds=thresholds,
        timestamps=timestamps,
        values=values,
        include_points=body.include_points,
    )


# -- anomalies ----------------------------------------------------------------
@router.get(
    "/anomalies",
    tags=["anomalies"],
    summary="Anomalies, newest first",
    response_model=Page[AnomalyOut],
    responses=_ERRORS,
)
async def list_anomalies(
    request: Request,
    caller: Caller,
    detector_id: Annotated[str | None, Query(description="only this detector")] = None,
    since: Since = None,
    until: Until = None,
    severity: Annotated[Severity | None, Query()] = None,
    status: Annotated[FeedbackStatus | None, Query(description="feedback status")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    position = decode_cursor(cursor, arity=2)
    before = None
    if position is not None:
        try:
            before = (datetime.fromisoformat(str(position[0])), int(position[1]))
        except (TypeError, ValueError):
            raise BadRequest("malformed cursor", details={"cursor": cursor}) from None
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        rows = await store.list_anomalies(
            conn,
            account=caller.account_id,
            detector_id=detector_id,
            since=since,
            until=until,
            severity=severity,
            status=status,
            limit=limit,
            before=before,
        )
    page = page_of(rows, limit, key=lambda r: [r["ts"].isoformat(), r["id"]])
    return Page(data=[service.anomaly_out(r) for r in page.data], next_cursor=page.next_cursor)


@router.get(
    "/anomalies/{anomaly_id}",
    tags=["anomalies"],
    summary="An anomaly: score, expected band, explanation, configuration, neighbours",
    response_model=AnomalyDetail,
    responses=_ERRORS,
)
async def get_anomaly(
    request: Request,
    caller: Caller,
    anomaly_id: int,
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
            ts=row["ts"],
            count=neighbours,
        )
    return service.anomaly_detail(row, around)


@router.patch(
    "/anomalies/{anomaly_id}",
    tags=["anomalies"],
    summary="Feedback: confirmed, false_positive or resolved (open reopens), and a note",
    response_model=AnomalyOut,
    responses=_ERRORS,
)
async def patch_anomaly(
    request: Request, caller: Caller, anomaly_id: int, body: AnomalyPatch
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


# -- stats --------------------------------------------------------------------
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
    responses=_ERRORS,
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
            await store.get_detector(conn, account=caller.account_id, detector_id=detector_id)
        rows = await store.stats(
            conn, account=caller.account_id, since=since, until=until, detector_id=detector_id
        )
    return {
        "since": since,
        "until": until,
        "account": service.counts_of(rows),
        "detectors": [{"detector_id": r["detector_id"], **service.counts_of([r])} for r in rows],
    }
