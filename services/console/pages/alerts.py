"""Alerts: the list with filters, one alert with its timeline, ack and resolve."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.client import ApiFailure
from services.console.web import ApiDep, FormDep, redirect, render

router = APIRouter()
STATUSES = ["triggered", "acknowledged", "resolved", "suppressed"]


@router.get("/alerts")
async def alert_list(
    request: Request,
    api: ApiDep,
    status: str | None = None,
    policy_id: str | None = None,
    cursor: str | None = None,
) -> Response:
    status = status if status in STATUSES else None
    page, policies = await asyncio.gather(
        api.oncall(
            "GET",
            "/api/v1/alerts",
            params={"status": status, "policy_id": policy_id, "limit": 50, "cursor": cursor},
        ),
        api.oncall("GET", "/api/v1/policies", params={"limit": 1000}),
    )
    return render(
        request,
        "alerts.html",
        title="Alerts",
        nav="alerts",
        alerts=page["data"],
        next_cursor=page.get("next_cursor"),
        statuses=STATUSES,
        status=status or "",
        policy_id=policy_id or "",
        policies=policies["data"],
    )


@router.get("/alerts/{alert_id}")
async def alert_detail(request: Request, api: ApiDep, alert_id: str) -> Response:
    alert = await api.oncall("GET", f"/api/v1/alerts/{alert_id}")
    return render(request, "alert.html", title=alert["summary"], nav="alerts", alert=alert)


@router.post("/alerts/{alert_id}/{action}")
async def alert_action(
    request: Request, api: ApiDep, form: FormDep, alert_id: str, action: str
) -> Response:
    if action not in ("ack", "resolve"):
        return redirect(request, f"/alerts/{alert_id}", error="unknown action")
    try:
        await api.oncall("POST", f"/api/v1/alerts/{alert_id}/{action}")
    except ApiFailure as exc:
        if exc.status != 409:
            raise
        return redirect(request, f"/alerts/{alert_id}", error=exc.message)
    done = "acknowledged" if action == "ack" else "resolved"
    return redirect(request, f"/alerts/{alert_id}", notice=f"alert {done}")
