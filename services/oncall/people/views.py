"""People routes: parse, call the store, answer."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.pagination import Cursor, Limit, Page
from services.oncall.deps import Now, Tx
from services.oncall.people import service
from services.oncall.people.deps import Destinations
from services.oncall.people.models import Person, PersonCreate, PersonUpdate
from services.oncall.responses import ERRORS

router = APIRouter(prefix="/api/v1/people", tags=["people"], responses=ERRORS)


@router.get("", summary="List people", response_model=Page[Person])
async def list_people(conn: Tx, limit: Limit = 50, cursor: Cursor = None) -> Page[Person]:
    return await service.get_all(conn, limit=limit, cursor=cursor)


@router.post("", status_code=201, summary="Create a person", response_model=Person)
async def create_person(body: PersonCreate, conn: Tx, policy: Destinations) -> Person:
    return await service.create(conn, body=body, policy=policy)


@router.get("/{person_id}", summary="Get a person", response_model=Person)
async def get_person(person_id: str, conn: Tx) -> Person:
    return await service.get(conn, person_id=person_id)


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
