"""REST routes of detector configuration: list, create, read, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from services.anomaly.deps import ERRORS, DetectorId, pool_of
from services.anomaly.detectors_api import service, store
from services.anomaly.detectors_api.models import DetectorCreate, DetectorOut, DetectorPatch
from services.anomaly.prometheus_pull import saving
from services.common.auth import Caller
from services.common.db import tenant_transaction
from services.common.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, page_of

router = APIRouter(prefix="/api/v1")


@router.get(
    "/detectors",
    tags=["detectors"],
    summary="List detectors with status and counters",
    response_model=Page[DetectorOut],
    responses=ERRORS,
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
    now = request.app.state.clock()
    return Page(
        data=[service.detector_out(r, now=now) for r in page.data], next_cursor=page.next_cursor
    )


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
    responses={**ERRORS, 409: {"description": "a detector with this id exists"}},
)
async def create_detector(request: Request, caller: Caller, body: DetectorCreate) -> dict[str, Any]:
    params, thresholds, fresh = service.check_config(body.algorithm, body.params, body.thresholds)
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
        "warmup": fresh.warmup,
        "learning": fresh.learning,
        "group_by": body.group_by,
        "max_series": body.max_series,
        "no_data_seconds": body.no_data_seconds,
    }
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        values["metric_source"], secrets = await saving.prepare(
            conn,
            request.app.state.settings,
            account=caller.account_id,
            detector_id=values["id"],
            source=values["metric_source"],
        )
        row = await store.insert_detector(conn, account=caller.account_id, values=values)
        await saving.write(
            conn,
            account=caller.account_id,
            detector_id=values["id"],
            source=values["metric_source"],
            secrets=secrets,
        )
    return service.detector_out(row, now=request.app.state.clock())


@router.get(
    "/detectors/{detector_id}",
    tags=["detectors"],
    summary="A detector: configuration, status (learning/active/disabled), last point, counts",
    response_model=DetectorOut,
    responses=ERRORS,
)
async def get_detector(request: Request, caller: Caller, detector_id: DetectorId) -> dict[str, Any]:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        row = await store.get_detector(conn, account=caller.account_id, detector_id=detector_id)
    return service.detector_out(row, now=request.app.state.clock())


@router.patch(
    "/detectors/{detector_id}",
    tags=["detectors"],
    summary="Update thresholds, name, params, enabled or escalation policy",
    description=(
        "Changing `algorithm` or `params` restarts learning (status goes back to `learning`); "
        "changing thresholds keeps what the detector learned. `escalation_policy_id: null` "
        "stops paging."
    ),
    response_model=DetectorOut,
    responses=ERRORS,
)
async def patch_detector(
    request: Request, caller: Caller, detector_id: DetectorId, body: DetectorPatch
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        source = changes.get("metric_source")
        if source is not None:
            changes["metric_source"], secrets = await saving.prepare(
                conn,
                request.app.state.settings,
                account=caller.account_id,
                detector_id=detector_id,
                source=source,
            )
        row = await service.update(
            conn, account=caller.account_id, detector_id=detector_id, changes=changes
        )
        if source is not None:
            await saving.write(
                conn,
                account=caller.account_id,
                detector_id=detector_id,
                source=changes["metric_source"],
                secrets=secrets,
            )
    return service.detector_out(row, now=request.app.state.clock())


@router.delete(
    "/detectors/{detector_id}",
    tags=["detectors"],
    status_code=204,
    summary="Delete a detector and all its points",
    responses=ERRORS,
)
async def delete_detector(request: Request, caller: Caller, detector_id: DetectorId) -> Response:
    async with tenant_transaction(pool_of(request), caller.account_id) as conn:
        await store.delete_detector(conn, account=caller.account_id, detector_id=detector_id)
    return Response(status_code=204)
