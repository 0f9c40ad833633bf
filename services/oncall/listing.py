"""The creation-ordered keyset list shared by people, schedules and policies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

import asyncpg

from services.common.pagination import Page, cursor_time, decode_cursor, page_of


class Listed(Protocol):
    created_at: datetime
    id: str


T = TypeVar("T", bound=Listed)


async def page_by_creation(
    conn: asyncpg.Connection,
    *,
    table: str,
    columns: str,
    build: Callable[[asyncpg.Record], T],
    limit: int,
    cursor: str | None,
) -> Page[T]:
    """One page of `table` (a constant of the caller) in (created_at, id) order."""
    position = decode_cursor(cursor, arity=2)
    after = None if position is None else (cursor_time(position[0]), str(position[1]))
    rows = await conn.fetch(
        f"""
        SELECT {columns} FROM {table}
        WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2::text)
        ORDER BY created_at, id
        LIMIT $3
        """,  # noqa: S608 - table and columns are the callers' constants
        None if after is None else after[0],
        None if after is None else after[1],
        limit + 1,
    )
    return page_of(
        [build(r) for r in rows], limit, lambda item: (item.created_at.isoformat(), item.id)
    )
