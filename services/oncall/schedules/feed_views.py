"""Calendar feed routes: the feed itself (its token only, no bearer) and the helpers
the schedule and people routes create and revoke feeds with."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Path, Request, Response

from services.common.db import tenant_transaction
from services.common.errors import Conflict, NotFound
from services.common.responses import errors
from services.oncall.deps import clock_of
from services.oncall.links.deps import UrlKeys
from services.oncall.schedules import feeds, service
from services.oncall.schedules.feeds import Kind

router = APIRouter(prefix="/api/v1/feeds", tags=["calendar feeds"])
# no account yet: the lookup sees the feed its selector names and nothing else
_NO_ACCOUNT = ""
FeedToken = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        description="the feed's token, as its feed_url carries it",
        examples=["ncf_abcdefghijklmnopabcdefghijklmnopqrstuvwxyz234567"],
    ),
]
FEED_ERRORS = errors(404, d404="no feed has this token (never had, or revoked)")


def feed_key(keys: UrlKeys) -> bytes:
    if keys.feeds is None:
        raise Conflict("calendar feeds need PLUGIN_SECRET (their tokens are derived from it)")
    return keys.feeds


def calendar_response(body: bytes, name: str) -> Response:
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{name}.ics"',
            "Cache-Control": "private, max-age=300",
        },
    )


async def create_feed(
    conn: asyncpg.Connection,
    keys: UrlKeys,
    kind: Kind,
    target: str,
    now: datetime,
    response: Response,
) -> dict[str, str]:
    url, created = await feeds.create(
        conn,
        key=feed_key(keys),
        base=keys.base,
        kind=kind,
        target=target,
        now=now,
    )
    response.status_code = 201 if created else 200
    return {"feed_url": url}


@router.get(
    "/{token}.ics",
    summary="A calendar feed (a schedule's final shifts, or a person's shifts over every "
    "schedule): its token is the credential, no bearer; 7 days back to 90 ahead",
    response_class=Response,
    openapi_extra={"security": []},  # the token in the path is the credential
    responses={
        200: {"content": {"text/calendar": {"schema": {"type": "string"}}}},
        **FEED_ERRORS,
    },
)
async def get_feed(token: FeedToken, request: Request) -> Response:
    now = clock_of(request)()
    since = now - timedelta(days=7)
    until = now + timedelta(days=90)
    async with tenant_transaction(request.app.state.pool, _NO_ACCOUNT) as conn:
        row = await feeds.open_feed(conn, token)
        if row is None:
            raise NotFound("no calendar feed has this token")
        if row["schedule_id"] is not None:
            body = await service.calendar(
                conn, schedule_id=row["schedule_id"], since=since, until=until, now=now
            )
            return calendar_response(body, row["schedule_id"])
        body = await feeds.person_calendar(
            conn, person_id=row["person_id"], since=since, until=until, now=now
        )
        return calendar_response(body, row["person_id"])
