"""Link routes: ``GET /api/v1/links/{token}`` shows a page with a button, only ``POST``
acts. The token is the credential (no bearer): it names the account, the alert, the
person and the action, signed by the service (``tokens.py``).

Answers are HTML pages: 200 (the confirmation, or what was done), 404 (not a link of
this service: tampered, truncated), 410 (used or expired), 409 (the alert's state
refuses the action; the link stays usable).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from services.common.db import tenant_transaction
from services.common.errors import Conflict
from services.oncall.deps import clock_of
from services.oncall.links import pages, service
from services.oncall.links.deps import Keys
from services.oncall.links.tokens import MAX_TOKEN, Link, read

router = APIRouter(prefix="/api/v1/links", tags=["links"])
# the token in the path is the credential: no bearer (OpenAPI cannot name a path key)
NO_BEARER: dict[str, object] = {"security": []}
LinkToken = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_TOKEN,
        description="the link's token, as the notification carries it",
    ),
]


def _html(description: str) -> dict[str, object]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


PAGES = {
    404: _html("not a link of this service (tampered or truncated): nothing was done"),
    410: _html("the link was used already, or it expired: nothing was done"),
}


def _checked(token: str, key: bytes | None, now: datetime) -> Link | HTMLResponse:
    link = read(key, token) if key is not None else None
    if link is None:
        return pages.not_found()
    if link.expired(now):
        return pages.gone("This link expired.")
    return link


@router.get(
    "/{token}",
    summary="The page of an ack / resolve / escalate link: the alert and a button (a GET "
    "changes nothing, so mail scanners that follow links do not act)",
    response_class=HTMLResponse,
    openapi_extra=NO_BEARER,
    responses={200: _html("the confirmation page, with a POST form"), **PAGES},
)
async def show_link(token: LinkToken, request: Request, keys: Keys) -> HTMLResponse:
    now = clock_of(request)()
    link = _checked(token, keys.links, now)
    if isinstance(link, HTMLResponse):
        return link
    async with tenant_transaction(request.app.state.pool, link.account) as conn:
        alert = await service.load(conn, link)
    if alert is None:
        return pages.not_found()
    if alert["used"]:
        return pages.gone("This link was used already.")
    return pages.confirm(link.action, alert, service.who(link, alert))


@router.post(
    "/{token}",
    summary="Act on the link once: acknowledge, resolve or escalate its alert as its person",
    response_class=HTMLResponse,
    openapi_extra=NO_BEARER,
    responses={
        200: _html("done, and on the alert's timeline with the person's id and name"),
        409: _html("the alert's state refuses the action (the link stays usable)"),
        **PAGES,
    },
)
async def use_link(token: LinkToken, request: Request, keys: Keys) -> HTMLResponse:
    now = clock_of(request)()
    link = _checked(token, keys.links, now)
    if isinstance(link, HTMLResponse):
        return link
    alert = None
    try:
        async with tenant_transaction(request.app.state.pool, link.account) as conn:
            alert = await service.load(conn, link)
            if alert is None:
                return pages.not_found()
            if not await service.use(conn, link, now=now):
                return pages.gone("This link was used already.")
            await service.act(conn, link, alert, now=now)
            after = await service.load(conn, link)
    except Conflict as refused:
        return pages.refused(refused.message, alert)
    return pages.done(link.action, after or alert, service.who(link, alert))
