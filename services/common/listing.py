"""Keyset lists: one page of a table in (timestamp, id) order, with optional filters.

Every list of the services pages the same way: rows in the order of a
timestamp column and a unique id (ascending, or newest first), `limit + 1`
fetched to know whether a next page exists, and an opaque cursor holding the
(timestamp, id) of the last row. A :class:`Keyset` names the table, its
columns and that order; :func:`keyset_page` runs the query.

Table, column and condition text come only from the callers' constants; every
value (filters, cursor, limit) is a query parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import asyncpg

from services.common.errors import BadRequest
from services.common.pagination import Page, cursor_time, decode_cursor, encode_cursor

T = TypeVar("T")

OPERATORS = frozenset({"=", "<", "<=", ">", ">=", "@>"})


def _bigint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(value)
    number = int(value)
    if not -(2**63) <= number < 2**63:  # Postgres would refuse it: the cursor is forged
        raise ValueError(value)
    return number


def _uuid(value: Any) -> str:
    return str(uuid.UUID(str(value)))


# a cursor's id read as its column's type; a value that cannot be one is a 400
ID_TYPES = {"text": str, "uuid": _uuid, "bigint": _bigint}


@dataclass(frozen=True, slots=True)
class Keyset:
    """How a table is listed: all constants of the caller, never request values.

    `order` is the (timestamptz column, unique id column) the list is sorted
    on and `id_type` the id's SQL type (text, uuid or bigint); `keys` are the
    names those two carry in the selected rows (when `columns` renames them).
    `where` is a fixed condition every row must meet.
    """

    table: str
    columns: str
    order: tuple[str, str] = ("created_at", "id")
    id_type: str = "text"
    newest_first: bool = False
    keys: tuple[str, str] | None = None
    where: str | None = None

    def __post_init__(self) -> None:
        if self.id_type not in ID_TYPES:
            raise ValueError(f"id_type must be one of {sorted(ID_TYPES)}")


class Filter(NamedTuple):
    """`column op value`, left out when `value` is None (column and op: constants)."""

    column: str
    op: str
    value: Any


def _position(keyset: Keyset, cursor: str | None) -> tuple[Any, Any] | None:
    position = decode_cursor(cursor, arity=2)
    if position is None:
        return None
    try:
        last_id = ID_TYPES[keyset.id_type](position[1])
    except (TypeError, ValueError):
        raise BadRequest("malformed cursor") from None
    return cursor_time(position[0]), last_id


def keyset_query(
    keyset: Keyset, filters: Iterable[Filter], *, after: bool
) -> tuple[str, list[int]]:
    """The SELECT and which of the filters it binds (in parameter order).

    With `after`, the two parameters following the filters are the cursor's
    position; the last parameter is the row limit.
    """
    conditions = [] if keyset.where is None else [keyset.where]
    bound = []
    for i, f in enumerate(filters):
        if f.op not in OPERATORS:
            raise ValueError(f"unsupported operator {f.op!r}")
        if f.value is not None:
            bound.append(i)
            conditions.append(f"{f.column} {f.op} ${len(bound)}")
    time_column, id_column = keyset.order
    n = len(bound)
    if after:
        past = "<" if keyset.newest_first else ">"
        cast = f"(${n + 1}::timestamptz, ${n + 2}::{keyset.id_type})"
        conditions.append(f"({time_column}, {id_column}) {past} {cast}")
        n += 2
    direction = " DESC" if keyset.newest_first else ""
    where = " AND ".join(conditions) or "TRUE"
    sql = (
        f"SELECT {keyset.columns} FROM {keyset.table} WHERE {where} "  # noqa: S608 - constants
        f"ORDER BY {time_column}{direction}, {id_column}{direction} LIMIT ${n + 1}"
    )
    return sql, bound


async def keyset_page(
    conn: asyncpg.Connection,
    keyset: Keyset,
    *,
    build: Callable[[asyncpg.Record], T],
    limit: int,
    cursor: str | None,
    filters: Iterable[Filter] = (),
) -> Page[T]:
    """One page of `keyset.table`: `limit` rows after `cursor`, each made by `build`."""
    filters = list(filters)
    position = _position(keyset, cursor)
    sql, bound = keyset_query(keyset, filters, after=position is not None)
    args = [filters[i].value for i in bound]
    if position is not None:
        args.extend(position)
    rows = await conn.fetch(sql, *args, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        time_key, id_key = keyset.keys or keyset.order
        last = rows[-1]
        next_cursor = encode_cursor([last[time_key].isoformat(), last[id_key]])
    return Page(data=[build(r) for r in rows], next_cursor=next_cursor)
