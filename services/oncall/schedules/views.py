"""Schedule routes: CRUD, current on-call, final shifts and the iCalendar export."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Now, Tx
from services.oncall.links.deps import Keys
from services.oncall.people.models import FeedUrl
from services.oncall.responses import ERRORS
from services.oncall.schedules import feeds, service
from services.oncall.schedules.deps import At, Since, Until
from services.oncall.schedules.feed_views import create_feed
from services.oncall.schedules.models import (
    Oncall,
    Schedule,
    ScheduleCreate,
    ScheduleUpdate,
    Shifts,
)

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=ERRORS)


@router.get("", summary="List schedules", response_model=Page[Schedule])
async def list_schedules(conn: Tx, limit: Limit = 50, cursor: Cursor = None) -> Page[Schedule]:
    return await service.get_all(conn, limit=limit, cursor=cursor)


@router.post("", status_code=201, summary="Create a schedule", response_model=Schedule)
async def create_schedule(body: ScheduleCreate, conn: Tx, now: Now) -> Schedule:
    return await service.create(conn, body=body, now=now)


@router.get(
    "/{schedule_id}", summary="Get a schedule with who is on call now", response_model=Schedule
)
async def get_schedule(schedule_id: str, conn: Tx, now: Now, keys: Keys) -> Schedule:
    schedule = await service.get(conn, schedule_id=schedule_id, now=now)
    schedule.feed_url = await feeds.current_url(
        conn, key=keys.feeds, base=keys.base, kind="schedule", target=schedule_id
    )
    return schedule


@router.patch(
    "/{schedule_id}",
    summary="Update a schedule (a new timezone or layers apply from now on)",
    response_model=Schedule,
)
async def update_schedule(schedule_id: str, body: ScheduleUpdate, conn: Tx, now: Now) -> Schedule:
    return await service.update(conn, schedule_id=schedule_id, body=body, now=now)


@router.delete(
    "/{schedule_id}",
    status_code=204,
    summary="Delete a schedule and its overrides (409 while a policy targets it)",
)
async def delete_schedule(schedule_id: str, conn: Tx) -> None:
    await service.delete(conn, schedule_id=schedule_id)


@router.get("/{schedule_id}/oncall", summary="Who is on call at an instant", response_model=Oncall)
async def get_oncall(schedule_id: str, conn: Tx, now: Now, at: At = None) -> Oncall:
    return await service.oncall_at(conn, schedule_id=schedule_id, at=at or now)


@router.get(
    "/{schedule_id}/shifts",
    summary="The final schedule over a range (default: the next 7 days), gaps included",
    response_model=Shifts,
)
async def get_shifts(
    schedule_id: str, conn: Tx, now: Now, since: Since = None, until: Until = None
) -> Shifts:
    since = since or now
    until = until or since + timedelta(days=7)
    return await service.shifts_between(conn, schedule_id=schedule_id, since=since, until=until)


@router.get(
    "/{schedule_id}/calendar.ics",
    summary="iCalendar export of the final shifts (default: 7 days back to 90 ahead)",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def get_calendar(
    schedule_id: str, conn: Tx, now: Now, since: Since = None, until: Until = None
) -> Response:
    since = since or now - timedelta(days=7)
    until = until or since + timedelta(days=97)
    body = await service.calendar(conn, schedule_id=schedule_id, since=since, until=until, now=now)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{schedule_id}.ics"'},
    )


@router.post(
    "/{schedule_id}/feed",
    status_code=201,
    summary="Create the schedule's calendar feed: an iCalendar URL with its own token "
    "(200 with the existing one; DELETE it for a new token)",
    response_model=FeedUrl,
    responses={200: {"model": FeedUrl, "description": "the feed that exists already"}},
)
async def create_schedule_feed(
    schedule_id: str, conn: Tx, now: Now, keys: Keys, response: Response
) -> dict[str, str]:
    return await create_feed(conn, keys, "schedule", schedule_id, now, response)


@router.delete(
    "/{schedule_id}/feed",
    status_code=204,
    summary="Revoke the schedule's calendar feed: its URL answers 404 from now on",
)
async def revoke_schedule_feed(schedule_id: str, conn: Tx) -> None:
    await feeds.revoke(conn, kind="schedule", target=schedule_id)
