"""SQL of the no-data pass: open silences read, silences due read, both written back.

Runs as the worker role across accounts (``common.background.worker_pool``); every row
is joined on its own ``source_account_id`` and every write names it. Reads are batched
along the series' primary key order (keyset: account, detector, series) and lock what
they return, detector then series (the order of every writer of a series), with
``FOR UPDATE SKIP LOCKED``: a series an ingest holds is left for the next pass, and
replicas running the pass at once share the series instead of recording a silence
twice (a silence recorded by another replica meanwhile no longer matches once locked).

Silences due are found from the detectors with ``no_data_seconds`` (partial index
``np_anomaly_detectors_no_data``), then their series by primary key, whose last point is
older than the setting; open silences by the partial index
``np_anomaly_series_no_data_open``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

Cursor = tuple[str, str, str]
START: Cursor = ("", "", "")

_DUE_SQL = """
SELECT s.source_account_id, s.detector_id, s.series_key, s.last_ts, s.last_value,
       (s.policy_state ->> 'interval')::float8 AS interval, d.no_data_seconds, d.enabled,
       d.name, d.algorithm, d.params, d.thresholds, d.escalation_policy_id,
       s.no_data_since, s.no_data_at, NULL::timestamptz AS back_at
  FROM np_anomaly_detectors d
  JOIN np_anomaly_series s
    ON s.source_account_id = d.source_account_id AND s.detector_id = d.id
 WHERE d.no_data_seconds IS NOT NULL AND d.enabled
   AND s.no_data_at IS NULL AND s.last_ts IS NOT NULL
   AND s.last_ts <= $1::timestamptz - make_interval(secs => d.no_data_seconds)
   AND (s.source_account_id, s.detector_id, s.series_key) > ($2, $3, $4)
 ORDER BY s.source_account_id, s.detector_id, s.series_key
 LIMIT $5
   FOR UPDATE OF d, s SKIP LOCKED
"""

# open silences, with the first point that came after the silence's last one (if any)
_OPEN_SQL = """
SELECT s.source_account_id, s.detector_id, s.series_key, s.last_ts, s.last_value,
       (s.policy_state ->> 'interval')::float8 AS interval, d.no_data_seconds, d.enabled,
       d.name, d.algorithm, d.params, d.thresholds, d.escalation_policy_id,
       s.no_data_since, s.no_data_at,
       (SELECT min(p.ts) FROM np_anomaly_data_points p
         WHERE p.source_account_id = s.source_account_id AND p.detector_id = s.detector_id
           AND p.series_key = s.series_key AND p.ts > s.no_data_since
           AND p.kind = 'point') AS back_at
  FROM np_anomaly_detectors d
  JOIN np_anomaly_series s
    ON s.source_account_id = d.source_account_id AND s.detector_id = d.id
 WHERE s.no_data_at IS NOT NULL
   AND (s.source_account_id, s.detector_id, s.series_key) > ($1, $2, $3)
 ORDER BY s.source_account_id, s.detector_id, s.series_key
 LIMIT $4
   FOR UPDATE OF d, s SKIP LOCKED
"""

# The silences that start: the no_data anomaly (a row of the points table, kind
# 'no_data', at the check's instant), the series' open silence and counters, and the page
# of those that page, in one statement.
_START_SQL = """
WITH i AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                         $5::timestamptz[], $6::float8[], $7::jsonb[], $8::bool[],
                         $9::text[], $10::text[], $11::text[], $12::jsonb[])
           AS i(account, detector_id, series_key, at, since, value, context, page,
                policy_id, dedup_key, summary, details)
),
ins AS (
    INSERT INTO np_anomaly_data_points
        (source_account_id, detector_id, series_key, ts, value, score, is_anomaly,
         severity, context, status, kind)
    SELECT i.account, i.detector_id, i.series_key, i.at, i.value, 1.0, true, $13, i.context,
           'open', 'no_data'
      FROM i
    ON CONFLICT (source_account_id, detector_id, series_key, ts) DO NOTHING
    RETURNING id, source_account_id, detector_id, series_key
),
silenced AS (
    UPDATE np_anomaly_series s
       SET no_data_since = i.since, no_data_at = i.at,
           anomalies_count = s.anomalies_count + 1,
           last_anomaly_at = GREATEST(s.last_anomaly_at, i.at)
      FROM i
     WHERE s.source_account_id = i.account AND s.detector_id = i.detector_id
       AND s.series_key = i.series_key
    RETURNING s.id
),
pages AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, point_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT i.account, 'open', i.detector_id, ins.id, i.policy_id, i.dedup_key, i.at, $13,
           i.summary, i.details, $14
      FROM i
      JOIN ins ON ins.source_account_id = i.account AND ins.detector_id = i.detector_id
              AND ins.series_key = i.series_key
     WHERE i.page
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM silenced) AS started, (SELECT count(*) FROM pages) AS pages
"""

# The silences that end: the series' silence closed, the no_data anomaly told when and
# how it ended, and the resolve of the alert it opened queued (if it opened one and the
# detector resolves), in one statement.
_END_SQL = """
WITH e AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                         $5::text[], $6::text[], $7::bool[], $8::text[],
                         $9::text[], $10::jsonb[])
           AS e(account, detector_id, series_key, at, ended_at, ended_by, resolve,
                dedup_key, summary, details)
),
closed AS (
    UPDATE np_anomaly_series s SET no_data_since = NULL, no_data_at = NULL
      FROM e
     WHERE s.source_account_id = e.account AND s.detector_id = e.detector_id
       AND s.series_key = e.series_key
    RETURNING s.id
),
marked AS (
    UPDATE np_anomaly_data_points p
       SET context = COALESCE(p.context, '{}'::jsonb)
                     || jsonb_build_object('ended_at', e.ended_at, 'ended_by', e.ended_by)
      FROM e
     WHERE p.source_account_id = e.account AND p.detector_id = e.detector_id
       AND p.series_key = e.series_key AND p.ts = e.at AND p.kind = 'no_data'
    RETURNING p.id
),
resolves AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT o.source_account_id, 'resolve', o.detector_id, o.policy_id, o.dedup_key,
           o.episode_start, o.severity, e.summary, e.details, $11
      FROM e
      JOIN np_anomaly_page_outbox o
        ON o.source_account_id = e.account AND o.kind = 'open' AND o.dedup_key = e.dedup_key
     WHERE e.resolve
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM closed) AS ended, (SELECT count(*) FROM resolves) AS resolves,
       (SELECT count(*) FROM marked) AS marked
"""


async def due(
    conn: asyncpg.Connection, now: datetime, after: Cursor, limit: int
) -> list[asyncpg.Record]:
    """Series of watching detectors silent for ``no_data_seconds`` by ``now``, with no
    open silence; the next ``limit`` after ``after``, locked (others skipped)."""
    return await conn.fetch(_DUE_SQL, now, *after, limit)


async def open_silences(
    conn: asyncpg.Connection, after: Cursor, limit: int
) -> list[asyncpg.Record]:
    """Series with an open silence, the next ``limit`` after ``after``, locked."""
    return await conn.fetch(_OPEN_SQL, *after, limit)


async def start(
    conn: asyncpg.Connection, rows: list[dict[str, Any]], *, severity: str, now: datetime
) -> asyncpg.Record:
    """Record the silences (dicts with the columns of ``_START_SQL``'s ``i``)."""
    columns = (
        "account",
        "detector_id",
        "series_key",
        "at",
        "since",
        "value",
        "context",
        "page",
        "policy_id",
        "dedup_key",
        "summary",
        "details",
    )
    result = await conn.fetchrow(
        _START_SQL, *([r[c] for r in rows] for c in columns), severity, now
    )
    assert result is not None
    return result


async def end(
    conn: asyncpg.Connection, rows: list[dict[str, Any]], *, now: datetime
) -> asyncpg.Record:
    """Close the silences (dicts with the columns of ``_END_SQL``'s ``e``)."""
    columns = (
        "account",
        "detector_id",
        "series_key",
        "at",
        "ended_at",
        "ended_by",
        "resolve",
        "dedup_key",
        "summary",
        "details",
    )
    result = await conn.fetchrow(_END_SQL, *([r[c] for r in rows] for c in columns), now)
    assert result is not None
    return result
