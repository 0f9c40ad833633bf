"""SQL of Prometheus pull: the sources' secrets (written by the detector routes), the
claim of due sources across accounts (the worker pool), the position advanced in the
ingest's transaction, a failed poll recorded. Every statement names the account."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.anomaly.prometheus_pull.source import PROMETHEUS, Secrets, source_key

# The detector routes, in their tenant transaction -----------------------------------
_SECRETS_SQL = """
SELECT bearer, headers FROM np_anomaly_pull_state
 WHERE source_account_id = $1 AND detector_id = $2
"""
# a new URL or query starts over: position, backfill and any lease in flight dropped
_SAVE_SQL = """
INSERT INTO np_anomaly_pull_state
    (source_account_id, detector_id, source_key, bearer, headers)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (source_account_id, detector_id) DO UPDATE
   SET bearer = EXCLUDED.bearer, headers = EXCLUDED.headers,
       source_key = EXCLUDED.source_key,
       position = CASE WHEN np_anomaly_pull_state.source_key = EXCLUDED.source_key
                       THEN np_anomaly_pull_state.position END,
       backfill_until = CASE WHEN np_anomaly_pull_state.source_key = EXCLUDED.source_key
                             THEN np_anomaly_pull_state.backfill_until END,
       lease_token = CASE WHEN np_anomaly_pull_state.source_key = EXCLUDED.source_key
                          THEN np_anomaly_pull_state.lease_token END,
       lease_until = CASE WHEN np_anomaly_pull_state.source_key = EXCLUDED.source_key
                          THEN np_anomaly_pull_state.lease_until END,
       next_due_at = '-infinity'
"""
_DROP_SQL = "DELETE FROM np_anomaly_pull_state WHERE source_account_id = $1 AND detector_id = $2"


def _headers(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


async def stored_secrets(
    conn: asyncpg.Connection, *, account: str, detector_id: str
) -> Secrets | None:
    """A detector's stored source secrets (None: no prometheus source stored)."""
    row = await conn.fetchrow(_SECRETS_SQL, account, detector_id)
    return None if row is None else Secrets(row["bearer"], _headers(row["headers"]))


async def write_source(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    source: dict[str, Any],
    secrets: Secrets | None,
) -> None:
    """The pull state of a detector's new source (its row saved in this transaction):
    a prometheus source's secrets stored (a new URL or query starts over), any other
    source's pull state dropped (``secrets`` None)."""
    if secrets is None or source.get("type") != PROMETHEUS:
        await conn.execute(_DROP_SQL, account, detector_id)
        return
    await conn.execute(
        _SAVE_SQL,
        account,
        detector_id,
        source_key(source),
        secrets.bearer,
        secrets.headers,
    )


# The poller: claims across accounts (worker pool) -----------------------------------
_CLAIM_SQL = """
WITH due AS (
    SELECT p.source_account_id, p.detector_id
      FROM np_anomaly_pull_state p
      JOIN np_anomaly_detectors d
        ON d.source_account_id = p.source_account_id AND d.id = p.detector_id
     WHERE p.next_due_at <= $1 AND (p.lease_until IS NULL OR p.lease_until <= $1)
       AND d.enabled AND d.metric_source->>'type' = 'prometheus'
     ORDER BY p.next_due_at
     LIMIT $2
       FOR UPDATE OF p SKIP LOCKED
)
UPDATE np_anomaly_pull_state p
   SET lease_token = $3, lease_until = $4
  FROM due, np_anomaly_detectors d
 WHERE p.source_account_id = due.source_account_id AND p.detector_id = due.detector_id
   AND d.source_account_id = p.source_account_id AND d.id = p.detector_id
RETURNING p.source_account_id, p.detector_id, p.bearer, p.headers, p.position,
          p.backfill_until, p.last_error, p.last_error_at, p.last_success_at,
          d.metric_source, d.group_by
"""
_NEXT_DUE_SQL = """
SELECT min(GREATEST(p.next_due_at, COALESCE(p.lease_until, p.next_due_at)))
  FROM np_anomaly_pull_state p
  JOIN np_anomaly_detectors d
    ON d.source_account_id = p.source_account_id AND d.id = p.detector_id
 WHERE d.enabled AND d.metric_source->>'type' = 'prometheus'
"""
# the lease is the poll's: a row taken over meanwhile (its lease ran out) is not touched
_ADVANCE_SQL = """
UPDATE np_anomaly_pull_state
   SET position = $4, backfill_until = COALESCE(backfill_until, $5), next_due_at = $6,
       last_success_at = $7, polls = polls + 1, skipped = skipped + $8,
       lease_token = NULL, lease_until = NULL
 WHERE source_account_id = $1 AND detector_id = $2 AND lease_token = $3
"""
_RELEASE_SQL = """
UPDATE np_anomaly_pull_state SET next_due_at = $4, lease_token = NULL, lease_until = NULL
 WHERE source_account_id = $1 AND detector_id = $2 AND lease_token = $3
"""
_FAILED_SQL = """
UPDATE np_anomaly_pull_state
   SET next_due_at = $4, last_error = $5, last_error_at = $6, errors = errors + 1,
       polls = polls + 1, lease_token = NULL, lease_until = NULL
 WHERE source_account_id = $1 AND detector_id = $2 AND lease_token = $3
"""


class LeaseLost(Exception):
    """The source was taken over (or changed) while this poll ran: nothing written."""


async def claim(
    pool: asyncpg.Pool, *, now: datetime, limit: int, token: uuid.UUID, until: datetime
) -> list[asyncpg.Record]:
    """The due sources, leased to ``token`` until ``until``."""
    return await pool.fetch(_CLAIM_SQL, now, limit, token, until)  # type: ignore[no-any-return]


async def next_due(pool: asyncpg.Pool) -> datetime | None:
    return await pool.fetchval(_NEXT_DUE_SQL)  # type: ignore[no-any-return]


async def advance(
    conn: asyncpg.Connection,
    *,
    account: str,
    detector_id: str,
    token: uuid.UUID,
    position: datetime,
    backfill_until: datetime | None,
    due: datetime,
    now: datetime,
    skipped: int,
) -> None:
    """The poll's points are stored: the position moves on (in their transaction);
    LeaseLost (the transaction must roll back) when the lease is no longer ours."""
    status = await conn.execute(
        _ADVANCE_SQL, account, detector_id, token, position, backfill_until, due, now, skipped
    )
    if status != "UPDATE 1":
        raise LeaseLost(detector_id)


async def release(
    pool: asyncpg.Pool, *, account: str, detector_id: str, token: uuid.UUID, due: datetime
) -> None:
    await pool.execute(_RELEASE_SQL, account, detector_id, token, due)


async def failed(
    pool: asyncpg.Pool,
    *,
    account: str,
    detector_id: str,
    token: uuid.UUID,
    due: datetime,
    error: str,
    now: datetime,
) -> None:
    await pool.execute(_FAILED_SQL, account, detector_id, token, due, error[:1000], now)
