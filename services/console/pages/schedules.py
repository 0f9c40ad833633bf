"""Schedules: the list with who is on call, and a schedule's two-week final
timeline in its zone and the viewer's, with overrides created and deleted here."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console import timeline
from services.console.client import ApiFailure, failure_of
from services.console.formatting import rfc3339, zone
from services.console.web import ApiDep, FormDep, now_of, redirect, render

router = APIRouter()
DAYS = 14


@router.get("/schedules")
async def schedule_list(request: Request, api: ApiDep) -> Response:
    page = await api.oncall("GET", "/api/v1/schedules", params={"limit": 1000})

    async def now_for(schedule: dict[str, Any]) -> dict[str, Any]:
        try:
            return await api.oncall("GET", f"/api/v1/schedules/{schedule['id']}/oncall")
        except ApiFailure as exc:
            return {"error": exc.message}

    oncall = await asyncio.gather(*(now_for(s) for s in page["data"]))
    return render(
        request,
        "schedules.html",
        title="Schedules",
        nav="schedules",
        rows=list(zip(page["data"], oncall, strict=True)),
    )


def _first_day(value: str | None, now: datetime, tz: str) -> date:
    if value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    return now.astimezone(zone(tz)).date()


@router.get("/schedules/{schedule_id}")
async def schedule_page(
    request: Request,
    api: ApiDep,
    schedule_id: str,
    start: str | None = None,
    tz: str | None = None,
    view: str | None = None,
) -> Response:
    schedule = await api.oncall("GET", f"/api/v1/schedules/{schedule_id}")
    home = schedule["timezone"]
    viewer = zone(tz, home).key if tz else home
    shown = viewer if view == "viewer" else home
    first = _first_day(start, now_of(request), shown)
    since, until = timeline.window(first, DAYS, shown)
    span = {"since": rfc3339(since), "until": rfc3339(until)}
    shifts, overrides, people = await asyncio.gather(
        api.oncall("GET", f"/api/v1/schedules/{schedule_id}/shifts", params=span),
        api.oncall(
            "GET",
            "/api/v1/overrides",
            params={**span, "schedule_id": schedule_id, "limit": 1000},
        ),
        api.oncall("GET", "/api/v1/people", params={"limit": 1000}),
    )
    names = {p["id"]: p["name"] for p in people["data"]}
    return render(
        request,
        "schedule.html",
        title=schedule["name"],
        nav="schedules",
        schedule=schedule,
        rows=timeline.rows(shifts["shifts"], first, DAYS, shown),
        shifts=shifts,
        overrides=overrides["data"],
        people=people["data"],
        names=names,
        home=home,
        viewer=viewer,
        shown=shown,
        view="viewer" if view == "viewer" else "schedule",
        start=first.isoformat(),
        previous=(first - timedelta(days=DAYS)).isoformat(),
        following=(first + timedelta(days=DAYS)).isoformat(),
        tz=tz or "",
        stamp=timeline.stamp,
        colour=timeline.colour_of,
    )


def _local_instant(value: str, tz_name: str) -> str:
    """A `datetime-local` field's wall time in `tz_name`, as RFC 3339 (ValueError if bad)."""
    wall = datetime.fromisoformat(value)
    if wall.tzinfo is None:
        wall = wall.replace(tzinfo=zone(tz_name))
    return rfc3339(wall)


@router.post("/schedules/{schedule_id}/overrides")
async def create_override(
    request: Request, api: ApiDep, form: FormDep, schedule_id: str
) -> Response:
    back = {"start": form.get("back_start"), "tz": form.get("tz"), "view": form.get("view")}
    schedule = await api.oncall("GET", f"/api/v1/schedules/{schedule_id}")
    try:
        body = {
            "schedule_id": schedule_id,
            "person_id": form.get("person_id", ""),
            "start": _local_instant(form.get("start", ""), schedule["timezone"]),
            "end": _local_instant(form.get("end", ""), schedule["timezone"]),
            "reason": form.get("reason") or None,
        }
    except ValueError:
        return redirect(
            request, f"/schedules/{schedule_id}", **back, error="start and end must be times"
        )
    try:
        await api.oncall("POST", "/api/v1/overrides", json=body)
    except ApiFailure as exc:
        if exc.status != 422:
            raise
        return redirect(
            request, f"/schedules/{schedule_id}", **back, error=f"override refused: {exc.message}"
        )
    return redirect(request, f"/schedules/{schedule_id}", **back, notice="override created")


@router.post("/schedules/{schedule_id}/overrides/{override_id}/delete")
async def delete_override(
    request: Request, api: ApiDep, form: FormDep, schedule_id: str, override_id: str
) -> Response:
    back = {"start": form.get("back_start"), "tz": form.get("tz"), "view": form.get("view")}
    await api.oncall("DELETE", f"/api/v1/overrides/{override_id}")
    return redirect(request, f"/schedules/{schedule_id}", **back, notice="override deleted")


@router.post("/schedules/{schedule_id}/feed")
async def create_feed(request: Request, api: ApiDep, form: FormDep, schedule_id: str) -> Response:
    back = {"start": form.get("back_start"), "tz": form.get("tz"), "view": form.get("view")}
    await api.oncall("POST", f"/api/v1/schedules/{schedule_id}/feed")
    return redirect(request, f"/schedules/{schedule_id}", **back, notice="calendar feed created")


@router.post("/schedules/{schedule_id}/feed/delete")
async def revoke_feed(request: Request, api: ApiDep, form: FormDep, schedule_id: str) -> Response:
    back = {"start": form.get("back_start"), "tz": form.get("tz"), "view": form.get("view")}
    await api.oncall("DELETE", f"/api/v1/schedules/{schedule_id}/feed")
    return redirect(request, f"/schedules/{schedule_id}", **back, notice="calendar feed revoked")


@router.get("/schedules/{schedule_id}/calendar.ics")
async def calendar(request: Request, api: ApiDep, schedule_id: str) -> Response:
    answer = await api.raw("oncall", f"/api/v1/schedules/{schedule_id}/calendar.ics")
    if answer.status_code != 200:
        raise failure_of(answer)
    return Response(
        answer.content,
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{schedule_id}.ics"'},
    )
