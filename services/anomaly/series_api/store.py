"""SQL of series: the list of a detector's series, and the series filters of the anomaly
and stats routes (``series=<id>``, ``label=name=value``).

Runs inside a tenant transaction; the queries name ``source_account_id`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from services.anomaly.detectors_api.service import progress_out
from services.anomaly.detectors_api.store import detector_missing
from services.anomaly.series import labels_of, parse_selector
from services.common.errors import NotFound, invalid_field
from services.common.listing import Filter, Keyset, keyset_page
from services.common.pagination import Page

# every column but the learned state (checkpoint, journal, threshold run): internal
LISTING = Keyset(
    table="np_anomaly_series s JOIN np_anomaly_detectors d "
    "ON d.source_account_id = s.source_account_id AND d.id = s.detector_id",
    columns="s.id, s.detector_id, s.series_key, s.n_seen, s.warmup, s.learning, "
    "s.points_count, s.anomalies_count, s.late_count, s.duplicates_count, s.last_ts, "
    "s.last_value, s.last_score, s.last_anomaly_at, s.created_at, s.updated_at, d.enabled, "
    "s.no_data_since",
    order=("s.created_at", "s.id"),
    id_type="bigint",
    keys=("created_at", "id"),
)


def series_out(row: asyncpg.Record) -> dict[str, Any]:
    status = "disabled" if not row["enabled"] else "learning" if row["learning"] else "active"
    return {
        "id": row["id"],
        "detector_id": row["detector_id"],
        "labels": labels_of(row["series_key"]),
        "status": status,
        "no_data_since": row["no_data_since"],
        **progress_out(row),
    }


def label_filter(selectors: list[str] | None) -> dict[str, str] | None:
    """``label=name=value`` parameters (repeatable) as the label set a series must contain."""
    if not selectors:
        return None
    labels: dict[str, str] = {}
    for text in selectors:
        try:
            labels.update(parse_selector(text))
        except ValueError as exc:
            raise invalid_field("label", f"{text!r}: {exc}") from None
    return labels


async def require_detector(conn: asyncpg.Connection, *, account: str, detector_id: str) -> None:
    exists = await conn.fetchval(
        "SELECT true FROM np_anomaly_detectors WHERE source_account_id = $1 AND id = $2",
        account,
        detector_id,
    )
    if not exists:
        raise detector_missing(detector_id)


async def list_series(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    labels: dict[str, str] | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """One page of a detector's series, oldest first (keyset on created_at, id)."""
    return await keyset_page(
        conn,
        LISTING,
        build=series_out,
        limit=limit,
        cursor=cursor,
        filters=[
            Filter("s.source_account_id", "=", account),
            Filter("s.detector_id", "=", detector_id),
            Filter("s.series_key::jsonb", "@>", labels),
        ],
    )


@dataclass(frozen=True)
class SeriesSelection:
    """Which points a list or count takes: a detector, one series (its key), label values."""

    detector_id: str | None = None
    series_key: str | None = None
    labels: dict[str, str] | None = None


async def selection(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str | None,
    series_id: int | None,
    label: list[str] | None,
) -> SeriesSelection:
    """The ``detector_id``, ``series`` and ``label`` filters of a request; an unknown series
    (or one of another detector than ``detector_id``) is a 404."""
    labels = label_filter(label)
    if series_id is None:
        return SeriesSelection(detector_id, None, labels)
    row = await conn.fetchrow(
        "SELECT detector_id, series_key FROM np_anomaly_series "
        "WHERE source_account_id = $1 AND id = $2",
        account,
        series_id,
    )
    if row is None or (detector_id is not None and row["detector_id"] != detector_id):
        raise NotFound(f"no series {series_id}", details={"series": series_id})
    return SeriesSelection(row["detector_id"], row["series_key"], labels)
