"""Overview: open alerts, detectors with status and last anomaly, on call now and next."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.client import Api, ApiFailure
from services.console.web import ApiDep, render

router = APIRouter()


async def _oncall(api: Api, schedule: dict[str, Any]) -> dict[str, Any]:
    try:
        now = await api.oncall("GET", f"/api/v1/schedules/{schedule['id']}/oncall")
    except ApiFailure as exc:  # one schedule's stored data must not break the page
        return {"schedule": schedule, "error": exc.message}
    return {"schedule": schedule, "oncall": now}


async def _all(api: Api, service: str, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list (pages of 1,000)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.call(
            service, "GET", path, params={**params, "limit": 1000, "cursor": cursor}
        )
        items += page["data"]
        cursor = page.get("next_cursor")
        if not cursor or len(items) >= 10_000:
            return items


@router.get("/")
async def overview(request: Request, api: ApiDep) -> Response:
    triggered, acknowledged, detectors, schedules = await asyncio.gather(
        api.oncall("GET", "/api/v1/alerts", params={"status": "triggered", "limit": 50}),
        api.oncall("GET", "/api/v1/alerts", params={"status": "acknowledged", "limit": 50}),
        _all(api, "anomaly", "/api/v1/detectors"),
        api.oncall("GET", "/api/v1/schedules", params={"limit": 100}),
    )
    oncall = await asyncio.gather(*(_oncall(api, s) for s in schedules["data"]))
    alerts = sorted(
        triggered["data"] + acknowledged["data"], key=lambda a: a["created_at"], reverse=True
    )
    return render(
        request,
        "overview.html",
        title="Overview",
        nav="overview",
        alerts=alerts,
        detectors=detectors,
        oncall=oncall,
    )
