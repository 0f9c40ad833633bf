"""The paging worker's other half: episodes that end because no point comes.

An anomaly episode ends at the first point more than ``cooldown_seconds``
after its last anomaly (the ingest sees that point and queues the resolve of
the episode's alert). When the series goes quiet instead, no point ever comes:
each ingest writes on the series row when its open, paged episode ends if
nothing else arrives (``episode_ends_at``, with its dedup key ``episode_key``;
see ``thresholds.episode_end``), and this pass, run by the paging loop with the
injected clock, ends every episode past that instant:

* the episode is closed in the threshold state (``episode_start`` null, not
  paged), so a later anomaly opens a new episode and pages again;
* a ``resolve`` row is queued in the page outbox for the episode's open page
  (none if the episode never reached on-call), which the sender delivers as
  ``POST /api/v1/alerts/{id}/resolve``.

One statement per batch, across accounts (the worker role), each row joined on
its own ``source_account_id``: series (and their detectors) locked with ``FOR UPDATE SKIP LOCKED``
(an ingest holding a detector is skipped and wins; any number of replicas share
the work), state closed and resolve queued together or not at all. A detector
whose ``thresholds.auto_resolve`` has been turned off since is left alone.
Queuing twice is harmless: the resolve row is unique per account and dedup key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Series whose paged episode is over, each with its detector locked first (the order every
# writer of a series keeps: detector, then series); a detector an ingest holds is skipped.
_CLOSE_SQL = """
WITH due AS (
    SELECT s.source_account_id, s.detector_id AS id, s.series_key, d.name, s.episode_key,
           s.episode_ends_at
      FROM np_anomaly_detectors d
      JOIN np_anomaly_series s
        ON s.source_account_id = d.source_account_id AND s.detector_id = d.id
     WHERE s.episode_ends_at < $1
       AND d.thresholds -> 'auto_resolve' IS DISTINCT FROM 'false'::jsonb
     ORDER BY s.episode_ends_at
     LIMIT $2
       FOR UPDATE OF d, s SKIP LOCKED
),
closed AS (
    UPDATE np_anomaly_series s
       SET policy_state = COALESCE(s.policy_state, '{}'::jsonb)
                          || '{"episode_start": null, "paged": false}'::jsonb,
           episode_key = NULL,
           episode_ends_at = NULL
      FROM due
     WHERE s.source_account_id = due.source_account_id AND s.detector_id = due.id
       AND s.series_key = due.series_key
    RETURNING due.source_account_id, due.id, due.series_key, due.name, due.episode_key,
              due.episode_ends_at
),
resolves AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT o.source_account_id, 'resolve', o.detector_id, o.policy_id, o.dedup_key,
           o.episode_start, o.severity,
           'Recovered: ' || c.name
               || CASE WHEN c.series_key = '{}' THEN '' ELSE ' ' || c.series_key END
               || ' quiet since its last anomaly',
           jsonb_build_object('detector_id', c.id, 'detector_name', c.name,
                              'labels', c.series_key::jsonb,
                              'account', c.source_account_id,
                              'episode_start', o.episode_start,
                              'ended_at', c.episode_ends_at, 'ended_by', 'quiet'),
           $1
      FROM closed c
      JOIN np_anomaly_page_outbox o
        ON o.source_account_id = c.source_account_id AND o.kind = 'open'
       AND o.dedup_key = c.episode_key
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id
)
SELECT (SELECT count(*) FROM closed) AS closed, (SELECT count(*) FROM resolves) AS resolves
"""


@dataclass
class ClosedEpisodes:
    closed: int = 0  # episodes ended by the clock
    resolves: int = 0  # resolves queued (episodes whose page reached the outbox)


async def close_quiet_episodes(
    pool: asyncpg.Pool, now: datetime, *, batch: int = 200
) -> ClosedEpisodes:
    """End the paged episodes that are over by ``now`` (no point came for the cooldown);
    queue the resolve of their alerts. Repeats until fewer than ``batch`` are due."""
    report = ClosedEpisodes()
    while True:
        row = await pool.fetchrow(_CLOSE_SQL, now, batch)
        assert row is not None
        report.closed += int(row["closed"])
        report.resolves += int(row["resolves"])
        if row["closed"] < batch:
            return report
