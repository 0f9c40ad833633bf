"""Keyset pagination shared by every list: `?limit=` and an opaque `?cursor=`."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from services.common.errors import BadRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size (default 50, max 1000)")]
# What a cursor is made of (unpadded base64url), for the OpenAPI documents; anything
# this server did not issue, of these characters or not, is a 400 "malformed cursor".
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
Cursor = Annotated[
    str | None,
    Query(
        description=(
            "opaque cursor from the previous page's next_cursor (400 if this server did not "
            "issue it)"
        ),
        json_schema_extra={"pattern": CURSOR_PATTERN, "minLength": 1},
    ),
]


class Page(BaseModel, Generic[T]):
    """One page of a list: the items and the cursor of the next page (null at the end)."""

    data: list[T]
    next_cursor: str | None = None


def encode_cursor(position: list[Any]) -> str:
    """Opaque cursor for a keyset position (the sort key values of the last item)."""
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, arity: int) -> list[Any] | None:
    """The keyset position in a cursor, or None for the first page; 400 if malformed."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise BadRequest("malformed cursor", details={"cursor": cursor[:100]}) from None
    if not isinstance(position, list) or len(position) != arity:
        raise BadRequest("malformed cursor", details={"cursor": cursor[:100]})
    return position


def cursor_time(value: Any) -> datetime:
    """The timestamp part of a keyset position; 400 when a forged cursor holds something else."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadRequest("malformed cursor") from None


def page_of(rows: list[T], limit: int, key: Any) -> Page[T]:
    """Build a page from `limit + 1` fetched rows; `key(row)` gives the keyset position."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(data=rows, next_cursor=encode_cursor(list(key(rows[-1]))))
    return Page(data=rows, next_cursor=None)
