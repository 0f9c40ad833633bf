"""SQL of detectors, anomalies and stats (the scoring writes live in scoring.py).

Every function takes a connection already inside a tenant transaction
(``tenant_transaction``): row-level security limits it to one account, and the
queries name ``source_account_id`` as well so that they use the indexes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.common.errors import Conflict, NotFound

# every column but the streaming state (checkpoint, journal, policy run): large, internal
DETECTOR_COLUMNS = (
    "source_account_id, id, name, description, metric_source, algorithm, params, thresholds, "
    "escalation_policy_id, enabled, n_seen, warmup, points_count, anomalies_count, late_count, "
    "duplicates_count, last_ts, last_value, last_score, last_anomaly_at, created_at, updated_at"
)
_SELECT_DETECTOR = (
    f"SELECT {DETECTOR_COLUMNS} FROM np_anomaly_detectors "  # noqa: S608 - fixed names
    "WHERE source_account_id = $1 AND id = $2"
)
_SELECT_DETECTOR_FOR_UPDATE = _SELECT_DETECTOR + " FOR UPDATE"
_INSERT_DETECTOR = f"""
INSERT INTO np_anomaly_detectors
    (source_account_id, id, name, description, metric_source, algorithm, params,
     thresholds, escalation_policy_id, enabled, warmup)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING {DETECTOR_COLUMNS}
"""  # noqa: S608 - fixed names
# the columns a user may change (PATCH), mapped to themselves: keys are never user input
_PATCHABLE = {
    "name",
    "description",
    "metric_source",
    "algorithm",
    "params",
    "thresholds",
    "escalation_policy_id",
    "enabled",
}


def detector_missing(detector_id: str) -> NotFound:
    return NotFound(f"no detector {detector_id!r}", details={"detector_id": detector_id})


# -- detectors ----------------------------------------------------------------
async def insert_detector(
    conn: asyncpg.Connection, *, account: str, values: dict[str, Any]
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            _INSERT_DETECTOR,
            account,
            values["id"],
            values["name"],
            values["description"],
            values["metric_source"],
            values["algorithm"],
            values["params"],
            values["thresholds"],
            values["escalation_policy_id"],
            values["enabled"],
            values["warmup"],
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"detector {values['id']!r} already exists", details={"id": values["id"]}
        ) from None
    assert row is not None
    return row


async def get_detector(
    conn: asyncpg.Connection, *, account: str, detector_id: str, for_update: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        _SELECT_DETECTOR_FOR_UPDATE if for_update else _SELECT_DETECTOR, account, detector_id
    )
    if row is None:
        raise detector_missing(detector_id)
    return row


async def list_detectors(
    conn: asyncpg.Connection, *, account: str, limit: int, after: str | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {DETECTOR_COLUMNS} FROM np_anomaly_detectors "  # noqa: S608 - fixed names
        "WHERE source_account_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        account,
        after,
        limit + 1,
    )


async def update_detector(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    changes: dict[str, Any],
    reset_model: bool,
    warmup: int | None,
) -> asyncpg.Record:
    """Apply `changes` (keys from the PATCH model); a new model forgets what it learned."""
    assignments: list[str] = []
    args: list[Any] = [account, detector_id]
    for column, value in changes.items():
        if column not in _PATCHABLE:
            raise ValueError(f"not a patchable column: {column}")
        args.append(value)
        assignments.append(f"{column} = ${len(args)}")
    if reset_model:
        # the model starts over (a new checkpoint identity: no replica reuses the old
        # model it may hold in memory); the threshold run/episode state is kept
        assignments.append(
            "state = NULL, journal = ''::bytea, "
            "checkpoint_id = nextval('public.np_anomaly_checkpoint_seq'), n_seen = 0"
        )
    if warmup is not None:
        args.append(warmup)
        assignments.append(f"warmup = ${len(args)}")
    assignments.append("updated_at = now()")
    row = await conn.fetchrow(
        f"UPDATE np_anomaly_detectors SET {', '.join(assignments)} "  # noqa: S608 - fixed names
        f"WHERE source_account_id = $1 AND id = $2 RETURNING {DETECTOR_COLUMNS}",
        *args,
    )
    if row is None:
        raise detector_missing(detector_id)
    return row


async def delete_detector(conn: asyncpg.Connection, *, account: str, detector_id: str) -> None:
    deleted = await conn.fetchval(
        "DELETE FROM np_anomaly_detectors WHERE source_account_id = $1 AND id = $2 RETURNING id",
        account,
        detector_id,
    )
    if deleted is None:
        raise detector_missing(detector_id)


async def history(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The newest `limit` stored points of a detector in [since, until), oldest first."""
    rows = await conn.fetch(
        """
        SELECT ts, value FROM np_anomaly_data_points
        WHERE source_account_id = $1 AND detector_id = $2
          AND ($3::timestamptz IS NULL OR ts >= $3) AND ($4::timestamptz IS NULL OR ts < $4)
        ORDER BY ts DESC LIMIT $5
        """,
        account,
        detector_id,
        since,
        until,
        limit,
    )
    rows.reverse()
    return rows


# -- anomalies ----------------------------------------------------------------
async def list_anomalies(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str | None,
    since: datetime | None,
    until: datetime | None,
    severity: str | None,
    status: str | None,
    limit: int,
    before: tuple[datetime, int] | None,
) -> list[asyncpg.Record]:
    """Anomalies newest first (keyset on ts, id); `limit + 1` rows to detect a next page."""
    before_ts, before_id = before if before is not None else (None, None)
    return await conn.fetch(
        """
        SELECT * FROM np_anomaly_data_points
        WHERE source_account_id = $1 AND is_anomaly
          AND ($2::text IS NULL OR detector_id = $2)
          AND ($3::timestamptz IS NULL OR ts >= $3)
          AND ($4::timestamptz IS NULL OR ts < $4)
          AND ($5::text IS NULL OR severity = $5)
          AND ($6::text IS NULL OR status = $6)
          AND ($7::timestamptz IS NULL OR (ts, id) < ($7, $8::bigint))
        ORDER BY ts DESC, id DESC
        LIMIT $9
        """,
        account,
        detector_id,
        since,
        until,
        severity,
        status,
        before_ts,
        before_id,
        limit + 1,
    )


async def get_anomaly(conn: asyncpg.Connection, *, account: str, point_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM np_anomaly_data_points "
        "WHERE source_account_id = $1 AND id = $2 AND is_anomaly",
        account,
        point_id,
    )
    if row is None:
        raise NotFound(f"no anomaly {point_id}", details={"id": point_id})
    return row


async def neighbours(
    conn: asyncpg.Connection, *, account: str, detector_id: str, ts: datetime, count: int
) -> list[asyncpg.Record]:
    """Up to `count` points before and `count` after `ts` (the point itself included)."""
    return await conn.fetch(
        """
        (SELECT id, ts, value, score, is_anomaly, expected, lower, upper, late
           FROM np_anomaly_data_points
          WHERE source_account_id = $1 AND detector_id = $2 AND ts < $3
          ORDER BY ts DESC LIMIT $4)
        UNION ALL
        (SELECT id, ts, value, score, is_anomaly, expected, lower, upper, late
           FROM np_anomaly_data_points
          WHERE source_account_id = $1 AND detector_id = $2 AND ts >= $3
          ORDER BY ts LIMIT $4 + 1)
        ORDER BY ts
        """,
        account,
        detector_id,
        ts,
        count,
    )


async def set_feedback(
    conn: asyncpg.Connection,
    *,
    account: str,
    point_id: int,
    status: str | None,
    note: str | None,
    note_given: bool,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        UPDATE np_anomaly_data_points SET
            status = COALESCE($3, status),
            note = CASE WHEN $5 THEN $4 ELSE note END,
            reviewed_at = CASE
                WHEN $3::text IS NULL THEN reviewed_at
                WHEN $3 = 'open' THEN NULL
                ELSE now() END
        WHERE source_account_id = $1 AND id = $2 AND is_anomaly
        RETURNING *
        """,
        account,
        point_id,
        status,
        note,
        note_given,
    )
    if row is None:
        raise NotFound(f"no anomaly {point_id}", details={"id": point_id})
    return row


# -- stats --------------------------------------------------------------------
async def stats(
    conn: asyncpg.Connection,
    *,
    account: str,
    since: datetime | None,
    until: datetime | None,
    detector_id: str | None,
) -> list[asyncpg.Record]:
    """Per-detector counts of the points stored in [since, until) (every detector listed)."""
    return await conn.fetch(
        """
        WITH p AS (
            SELECT detector_id,
                   count(*) AS points,
                   count(*) FILTER (WHERE is_anomaly) AS anomalies,
                   count(*) FILTER (WHERE is_anomaly AND severity = 'warning') AS warning,
                   count(*) FILTER (WHERE is_anomaly AND severity = 'critical') AS critical,
                   count(*) FILTER (WHERE is_anomaly AND status <> 'open') AS reviewed,
                   count(*) FILTER (WHERE is_anomaly AND status = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE is_anomaly AND status = 'false_positive')
                       AS false_positives,
                   count(*) FILTER (WHERE is_anomaly AND status = 'resolved') AS resolved
              FROM np_anomaly_data_points
             WHERE source_account_id = $1
               AND ($2::timestamptz IS NULL OR ts >= $2)
               AND ($3::timestamptz IS NULL OR ts < $3)
               AND ($4::text IS NULL OR detector_id = $4)
             GROUP BY detector_id
        )
        SELECT d.id AS detector_id,
               COALESCE(p.points, 0) AS points, COALESCE(p.anomalies, 0) AS anomalies,
               COALESCE(p.warning, 0) AS warning, COALESCE(p.critical, 0) AS critical,
               COALESCE(p.reviewed, 0) AS reviewed, COALESCE(p.confirmed, 0) AS confirmed,
               COALESCE(p.false_positives, 0) AS false_positives,
               COALESCE(p.resolved, 0) AS resolved
          FROM np_anomaly_detectors d
          LEFT JOIN p ON p.detector_id = d.id
         WHERE d.source_account_id = $1 AND ($4::text IS NULL OR d.id = $4)
         ORDER BY d.id
        """,
        account,
        since,
        until,
        detector_id,
    )
