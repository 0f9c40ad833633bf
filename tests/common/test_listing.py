"""The keyset list's SQL: filters bound as parameters, the cursor condition, the order."""

from __future__ import annotations

import pytest

from services.common.errors import BadRequest
from services.common.listing import Filter, Keyset, keyset_page, keyset_query
from services.common.pagination import encode_cursor

NEWEST = Keyset(
    table="t", columns="a, b", order=("ts", "id"), id_type="bigint", newest_first=True, where="ok"
)


def test_creation_order_without_filters() -> None:
    sql, bound = keyset_query(Keyset(table="t", columns="*"), [], after=False)
    assert sql == "SELECT * FROM t WHERE TRUE ORDER BY created_at, id LIMIT $1"
    assert bound == []


def test_filters_with_a_value_are_bound_in_order_and_none_leaves_them_out() -> None:
    filters = [Filter("s", "=", None), Filter("p", "=", "x"), Filter("ts", ">=", 1)]
    sql, bound = keyset_query(NEWEST, filters, after=True)
    assert bound == [1, 2]
    assert sql == (
        "SELECT a, b FROM t WHERE ok AND p = $1 AND ts >= $2 "
        "AND (ts, id) < ($3::timestamptz, $4::bigint) ORDER BY ts DESC, id DESC LIMIT $5"
    )


def test_only_comparison_operators_and_known_id_types() -> None:
    with pytest.raises(ValueError, match="operator"):
        keyset_query(NEWEST, [Filter("a", "; DROP", 1)], after=False)
    with pytest.raises(ValueError, match="id_type"):
        Keyset(table="t", columns="*", id_type="json")


async def test_a_cursor_whose_id_is_not_of_the_id_type_is_refused() -> None:
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", "not-a-number"])
    with pytest.raises(BadRequest):
        await keyset_page(None, NEWEST, build=dict, limit=1, cursor=cursor)  # type: ignore[arg-type]


@pytest.mark.parametrize("last_id", [2**63, -(2**63) - 1, True, 1.5, [1]])
async def test_a_cursor_id_postgres_cannot_hold_is_a_400(last_id: object) -> None:
    """A forged cursor with an id past bigint was bound as is and refused by Postgres
    (a 422 "a value cannot be stored"): it is a malformed cursor."""
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", last_id])
    with pytest.raises(BadRequest, match="malformed cursor"):
        await keyset_page(None, NEWEST, build=dict, limit=1, cursor=cursor)  # type: ignore[arg-type]


async def test_a_cursor_id_that_is_no_uuid_is_a_400() -> None:
    keyset = Keyset(table="t", columns="*", id_type="uuid")
    cursor = encode_cursor(["2026-01-01T00:00:00+00:00", "x"])
    with pytest.raises(BadRequest, match="malformed cursor"):
        await keyset_page(None, keyset, build=dict, limit=1, cursor=cursor)  # type: ignore[arg-type]
