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

# every column but the streaming state (checkpoint, journal, policy run): large, internal
DETECTOR_COLUMNS = (
    "source_account_id, id, name, description, metric_source, algorithm, params, thresholds, "
    "escalation_policy_id, enabled, n_seen, warmup, learning, points_count, anomalies_count, "
    "late_count, duplicates_count, last_ts, last_value, last_score, last_anomaly_at, "
    "created_at, updated_at"
)
_SELECT_DETECTOR = (
    f"SELECT {DETECTOR_COLUMNS} FROM np_anomaly_detectors "  # noqa: S608 - fixed names
    "WHERE source_account_id = $1 AND id = $2"
)
_SELECT_DETECTOR_FOR_UPDATE = _SELECT_DETECTOR + " FOR UPDATE"
_INSERT_DETECTOR = f"""
INSERT INTO np_anomaly_detectors
    (source_account_id, id, name, description, metric_source, algorithm, params,
     thresholds, escalation_policy_id, enabled, warmup, learning)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
    restart_learning: bool,
    warmup: int | None,
    learning: bool | None = None,
    episode: tuple[str | None, datetime | None] | None = None,
) -> asyncpg.Record:
    """Apply `changes` (keys from the PATCH body); new algorithm or params restart learning;
    `episode` (dedup key, end) replaces the open paged episode's end (new thresholds)."""
    assignments: list[str] = []
    args: list[Any] = [account, detector_id]
    for column, value in changes.items():
        if column not in _PATCHABLE:
            raise ValueError(f"not a patchable column: {column}")
        args.append(value)
        assignments.append(f"{column} = ${len(args)}")
    if restart_learning:
        # learning starts over (a new checkpoint identity: no replica reuses the old
        # detector it may hold in memory); the threshold run/episode state is kept
        assignments.append(
            "state = NULL, journal = ''::bytea, "
            "checkpoint_id = nextval('public.np_anomaly_checkpoint_seq'), n_seen = 0"
        )
    if warmup is not None:
        args.append(warmup)
        assignments.append(f"warmup = ${len(args)}")
    if learning is not None:
        args.append(learning)
        assignments.append(f"learning = ${len(args)}")
    if episode is not None:
        args.extend(episode)
        assignments.append(f"episode_key = ${len(args) - 1}, episode_ends_at = ${len(args)}")
    assignments.append("updated_at = now()")
    row = await conn.fetchrow(
        f"UPDATE np_anomaly_detectors SET {', '.join(assignments)} "  # noqa: S608 - fixed names
        f"WHERE source_account_id = $1 AND id = $2 RETURNING {DETECTOR_COLUMNS}",
        *args,
    )
    if row is None:
        raise detector_missing(detector_id)
    return row


async def policy_state(
    conn: asyncpg.Connection, *, account: str, detector_id: str
) -> dict[str, Any] | None:
    """The threshold policy's run and episode state (internal; not in DETECTOR_COLUMNS)."""
    state: dict[str, Any] | None = await conn.fetchval(
        "SELECT policy_state FROM np_anomaly_detectors WHERE source_account_id = $1 AND id = $2",
        account,
        detector_id,
    )
    return state


async def delete_detector(conn: asyncpg.Connection, *, account: str, detector_id: str) -> None:
    deleted = await conn.fetchval(
        "DELETE FROM np_anomaly_detectors WHERE source_account_id = $1 AND id = $2 RETURNING id",
        account,
        detector_id,
    )
    if deleted is None:
        raise detector_missing(detector_id)
