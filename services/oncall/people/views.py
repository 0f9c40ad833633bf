"""People routes: parse, call the store, answer."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Now, Tx
from services.oncall.links.deps import Keys
from services.oncall.people import contacts, service
from services.oncall.people.deps import Destinations
from services.oncall.people.models import (
    FeedUrl,
    Person,
    PersonCreate,
    PersonUpdate,
    RotatedSecret,
)
from services.oncall.responses import ERRORS
from services.oncall.schedules import feeds
from services.oncall.schedules.feed_views import create_feed

router = APIRouter(prefix="/api/v1/people", tags=["people"], responses=ERRORS)


@router.get("", summary="List people", response_model=Page[Person])
async def list_people(conn: Tx, limit: Limit = 50, cursor: Cursor = None) -> Page[Person]:
    return await service.get_all(conn, limit=limit, cursor=cursor)


@router.post("", status_code=201, summary="Create a person", response_model=Person)
async def create_person(body: PersonCreate, conn: Tx, policy: Destinations) -> Person:
    return await service.create(conn, body=body, policy=policy)


@router.get("/{person_id}", summary="Get a person", response_model=Person)
async def get_person(person_id: str, conn: Tx, keys: Keys) -> Person:
    person = await service.get(conn, person_id=person_id)
    person.feed_url = await feeds.current_url(
        conn, key=keys.feeds, base=keys.base, kind="person", target=person_id
    )
    return person


@router.patch("/{person_id}", summary="Update a person", response_model=Person)
async def update_person(
    person_id: str, body: PersonUpdate, conn: Tx, policy: Destinations
) -> Person:
    return await service.update(conn, person_id=person_id, body=body, policy=policy)


@router.delete(
    "/{person_id}",
    status_code=204,
    summary="Delete a person (409 while a schedule, override or policy names them)",
)
async def delete_person(person_id: str, conn: Tx, now: Now) -> None:
    await service.delete(conn, person_id=person_id, now=now)


@router.post(
    "/{person_id}/contact-methods/{contact_method_id}/rotate-secret",
    summary="A new signing secret for a webhook or Slack contact method (the old one "
    "stops at once; 409 for an email method, which is not signed)",
    response_model=RotatedSecret,
)
async def rotate_secret(person_id: str, contact_method_id: str, conn: Tx) -> RotatedSecret:
    return await contacts.rotate(conn, person_id=person_id, method_id=contact_method_id)


@router.post(
    "/{person_id}/feed",
    status_code=201,
    summary="Create the person's 'my shifts' calendar feed (their shifts over every "
    "schedule; 200 with the existing one; DELETE it for a new token)",
    response_model=FeedUrl,
    responses={200: {"model": FeedUrl, "description": "the feed that exists already"}},
)
async def create_person_feed(
    person_id: str, conn: Tx, now: Now, keys: Keys, response: Response
) -> dict[str, str]:
    return await create_feed(conn, keys, "person", person_id, now, response)


@router.delete(
    "/{person_id}/feed",
    status_code=204,
    summary="Revoke the person's calendar feed: its URL answers 404 from now on",
)
async def revoke_person_feed(person_id: str, conn: Tx) -> None:
    await feeds.revoke(conn, kind="person", target=person_id)
