"""SQL of detector configuration (the ingest writes live in ``ingest/sql.py``).

Every function takes a connection already inside a tenant transaction
(``tenant_transaction``): row-level security limits it to one account, and the
queries name ``source_account_id`` as well so that they use the indexes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.common.errors import Conflict, NotFound

# A detector's configuration (its row) and, summed over its series, what they learned and
# counted: the row keeps the configuration, each series its model and counters. With no
# series yet, `learning` is what a fresh model of the configuration says; with series,
# the detector is learning until one of its series is active.
DETECTOR_COLUMNS = """
d.source_account_id, d.id, d.name, d.description, d.metric_source, d.algorithm, d.params,
d.thresholds, d.escalation_policy_id, d.enabled, d.group_by, d.max_series, d.series_count,
d.no_data_seconds, d.warmup, COALESCE(a.learning, d.learning) AS learning,
COALESCE(a.n_seen, 0) AS n_seen,
COALESCE(a.points_count, 0) AS points_count,
COALESCE(a.anomalies_count, 0) AS anomalies_count, COALESCE(a.late_count, 0) AS late_count,
COALESCE(a.duplicates_count, 0) AS duplicates_count, a.last_anomaly_at,
l.last_ts, l.last_value, l.last_score, d.created_at, d.updated_at,
ps.position AS pull_position, ps.last_success_at AS pull_last_success_at,
ps.last_error AS pull_last_error, ps.last_error_at AS pull_last_error_at,
ps.polls AS pull_polls, ps.errors AS pull_errors, ps.skipped AS pull_skipped
"""
_FROM_DETECTORS = """
  FROM np_anomaly_detectors d
  LEFT JOIN LATERAL (
      SELECT bool_and(s.learning) AS learning, sum(s.n_seen)::bigint AS n_seen,
             sum(s.points_count)::bigint AS points_count,
             sum(s.anomalies_count)::bigint AS anomalies_count,
             sum(s.late_count)::bigint AS late_count,
             sum(s.duplicates_count)::bigint AS duplicates_count,
             max(s.last_anomaly_at) AS last_anomaly_at
        FROM np_anomaly_series s
       WHERE s.source_account_id = d.source_account_id AND s.detector_id = d.id
  ) a ON true
  LEFT JOIN LATERAL (
      SELECT s.last_ts, s.last_value, s.last_score
        FROM np_anomaly_series s
       WHERE s.source_account_id = d.source_account_id AND s.detector_id = d.id
         AND s.last_ts IS NOT NULL
       ORDER BY s.last_ts DESC LIMIT 1
  ) l ON true
  LEFT JOIN np_anomaly_pull_state ps
    ON ps.source_account_id = d.source_account_id AND ps.detector_id = d.id
"""
_SELECT_DETECTOR = (
    f"SELECT {DETECTOR_COLUMNS} {_FROM_DETECTORS}"  # noqa: S608 - fixed names
    "WHERE d.source_account_id = $1 AND d.id = $2"
)
_LOCK_DETECTOR = (
    "SELECT id, algorithm, params, thresholds, group_by FROM np_anomaly_detectors "
    "WHERE source_account_id = $1 AND id = $2 FOR UPDATE"
)
_INSERT_DETECTOR = """
INSERT INTO np_anomaly_detectors
    (source_account_id, id, name, description, metric_source, algorithm, params,
     thresholds, escalation_policy_id, enabled, warmup, learning, group_by, max_series,
     no_data_seconds)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING id
"""
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
    "group_by",
    "max_series",
    "no_data_seconds",
}


def detector_missing(detector_id: str) -> NotFound:
    return NotFound(f"no detector {detector_id!r}", details={"detector_id": detector_id})


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
            values["learning"],
            values["group_by"],
            values["max_series"],
            values.get("no_data_seconds"),
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"detector {values['id']!r} already exists", details={"id": values["id"]}
        ) from None
    assert row is not None
    return await get_detector(conn, account=account, detector_id=values["id"])


async def get_detector(
    conn: asyncpg.Connection, *, account: str, detector_id: str, for_update: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        _LOCK_DETECTOR if for_update else _SELECT_DETECTOR, account, detector_id
    )
    if row is None:
        raise detector_missing(detector_id)
    return row


async def list_detectors(
    conn: asyncpg.Connection, *, account: str, limit: int, after: str | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {DETECTOR_COLUMNS} {_FROM_DETECTORS}"  # noqa: S608 - fixed names
        "WHERE d.source_account_id = $1 AND ($2::text IS NULL OR d.id > $2) "
        "ORDER BY d.id LIMIT $3",
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
    restart_learning: bool,
    warmup: int | None,
    learning: bool | None = None,
    episodes: list[tuple[str, str | None, datetime | None]] | None = None,
    dropped: list[str] | None = None,
) -> asyncpg.Record:
    """Apply `changes` (keys from the PATCH body); new algorithm or params restart the
    learning of every series; `episodes` (series key, dedup key, end) replace the open
    paged episodes' ends (new thresholds); `dropped` series are deleted (a new group_by)."""
    assignments: list[str] = []
    args: list[Any] = [account, detector_id]
    for column, value in changes.items():
        if column not in _PATCHABLE:
            raise ValueError(f"not a patchable column: {column}")
        args.append(value)
        assignments.append(f"{column} = ${len(args)}")
    if warmup is not None:
        args.append(warmup)
        assignments.append(f"warmup = ${len(args)}")
    if learning is not None:
        args.append(learning)
        assignments.append(f"learning = ${len(args)}")
    if dropped:
        args.append(len(dropped))
        assignments.append(f"series_count = series_count - ${len(args)}")
    assignments.append("updated_at = now()")
    found = await conn.fetchval(
        f"UPDATE np_anomaly_detectors SET {', '.join(assignments)} "  # noqa: S608 - fixed names
        "WHERE source_account_id = $1 AND id = $2 RETURNING id",
        *args,
    )
    if found is None:
        raise detector_missing(detector_id)
    if dropped:
        await conn.execute(
            "DELETE FROM np_anomaly_series WHERE source_account_id = $1 AND detector_id = $2 "
            "AND series_key = ANY($3::text[])",
            account,
            detector_id,
            dropped,
        )
    if restart_learning:
        # learning starts over (a new checkpoint identity: no replica reuses the old
        # detector it may hold in memory); the threshold run/episode state is kept
        await conn.execute(
            "UPDATE np_anomaly_series SET state = NULL, journal = ''::bytea, "
            "checkpoint_id = nextval('public.np_anomaly_checkpoint_seq'), n_seen = 0, "
            "warmup = COALESCE($3, warmup), learning = COALESCE($4, learning), "
            "updated_at = now() WHERE source_account_id = $1 AND detector_id = $2",
            account,
            detector_id,
            warmup,
            learning,
        )
    if episodes:
        await conn.execute(
            "UPDATE np_anomaly_series s SET episode_key = e.key, episode_ends_at = e.ends_at "
            "FROM unnest($3::text[], $4::text[], $5::timestamptz[]) AS e(series_key, key, ends_at) "
            "WHERE s.source_account_id = $1 AND s.detector_id = $2 "
            "AND s.series_key = e.series_key",
            account,
            detector_id,
            [e[0] for e in episodes],
            [e[1] for e in episodes],
            [e[2] for e in episodes],
        )
    return await get_detector(conn, account=account, detector_id=detector_id)


async def series_states(
    conn: asyncpg.Connection, *, account: str, detector_id: str
) -> list[asyncpg.Record]:
    """Each series' key and threshold policy run/episode state (internal)."""
    return await conn.fetch(
        "SELECT series_key, policy_state FROM np_anomaly_series "
        "WHERE source_account_id = $1 AND detector_id = $2",
        account,
        detector_id,
    )


async def delete_detector(conn: asyncpg.Connection, *, account: str, detector_id: str) -> None:
    deleted = await conn.fetchval(
        "DELETE FROM np_anomaly_detectors WHERE source_account_id = $1 AND id = $2 RETURNING id",
        account,
        detector_id,
    )
    if deleted is None:
        raise detector_missing(detector_id)
