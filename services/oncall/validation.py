"""Validation helpers shared by the on-call resources.

Pydantic gathers every field error of a body at once; references to other
rows (a person in a rotation, a schedule in a policy) are checked against the
database afterwards and reported the same way: 422 with one entry per field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, Field

from services.common.errors import NotFound, ValidationFailed

SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
SLUG_MESSAGE = "must match ^[a-z0-9][a-z0-9_.-]{0,62}$"


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(SLUG_MESSAGE)
    return value


# the zone names of the IANA database installed (tzdata); the OpenAPI documents list them
ZONES: tuple[str, ...] = tuple(sorted(available_timezones()))
_ZONE_SET = frozenset(ZONES)


def _zone(value: str) -> str:
    try:
        if value not in _ZONE_SET:  # a file under the tz folder that is not a zone name
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


Slug = Annotated[
    str,
    AfterValidator(_slug),
    Field(examples=["primary-oncall"], json_schema_extra={"pattern": SLUG.pattern}),
]
IanaZone = Annotated[
    str,
    AfterValidator(_zone),
    Field(examples=["Europe/Berlin"], json_schema_extra={"enum": list(ZONES)}),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def new_id() -> str:
    """A generated id (a UUID string, which is also a valid slug)."""
    return str(uuid.uuid4())


def field_error(
    loc: Iterable[str | int], message: str, kind: str = "value_error"
) -> dict[str, Any]:
    """One entry of a 422 envelope's details, shaped like FastAPI's own."""
    return {"loc": [str(part) for part in loc], "message": message, "type": kind}


def raise_field_errors(errors: list[dict[str, Any]]) -> None:
    """422 with every error, if there are any."""
    if errors:
        first = errors[0]
        where = ".".join(first["loc"])
        raise ValidationFailed(f"{where}: {first['message']}", details=errors)


def dotted_loc(path: str, prefix: tuple[str, ...] = ("body",)) -> list[str]:
    """`layers[1].rotation.handoff` → ["body", "layers", "1", "rotation", "handoff"]."""
    parts: list[str] = list(prefix)
    for piece in re.split(r"\.|\[|\]", path):
        if piece:
            parts.append(piece)
    return parts


def not_found(kind: str, ident: object) -> NotFound:
    return NotFound(f"no {kind} with id {ident!r}", details={"id": str(ident)})


def parse_uuid(value: str, kind: str) -> uuid.UUID:
    """Ids that are UUIDs: anything else cannot exist, so it is a 404."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(kind, value) from None


def loc_of(path: str) -> tuple[str | int, ...]:
    """`layers[1].rotation.handoff` → ("layers", 1, "rotation", "handoff")."""
    parts: list[str | int] = []
    for piece in re.split(r"\.|\[|\]", path):
        if piece:
            parts.append(int(piece) if piece.isdigit() else piece)
    return tuple(parts)


def merged_validation(
    handler: Any, data: Any, domain_errors: list[tuple[tuple[str | int, ...], str]]
) -> Any:
    """Run pydantic (`handler`) and report its errors together with the domain's.

    Used by wrap validators so that one 422 lists every problem: pydantic's
    structural ones and the domain type's (a rotation's handoff, a zone name).
    A domain error at a location pydantic already reported is dropped.
    """
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    try:
        result = handler(data)
        structural: list[Any] = []
    except ValidationError as exc:
        result = None
        structural = exc.errors()
    if not domain_errors and not structural:
        return result
    seen = {tuple(e["loc"]) for e in structural}
    details: list[InitErrorDetails] = [
        {
            "type": PydanticCustomError(e["type"], e["msg"]),
            "loc": tuple(e["loc"]),
            "input": e.get("input"),
        }
        for e in structural
    ]
    for loc, message in domain_errors:
        if loc in seen or any(loc[: len(s)] == s for s in seen if s):
            continue
        seen.add(loc)
        details.append(
            {
                "type": PydanticCustomError("value_error", message),
                "loc": loc,
                "input": None,
            }
        )
    raise ValidationError.from_exception_data("body", details)
