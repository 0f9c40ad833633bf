"""The SQL of the ingest pipeline (see ``pipeline.py`` for the round trips it makes).

Every statement names ``source_account_id`` ($1) and runs in a tenant
transaction, so row-level security holds as a second wall.
"""

# The lock. $2..$4 describe the live detectors this process holds (id, checkpoint id, journal
# bytes seen; NULLs when none): `cached` says whether such a detector is still current, and
# then only the unseen tail of the journal is returned; otherwise the checkpoint and the
# whole journal. Evaluated on the locked row version (a concurrent update is waited for).
_LOCK_COLUMNS = """
SELECT d.id, d.name, d.algorithm, d.params, d.thresholds, d.enabled, d.escalation_policy_id,
       d.last_ts, d.n_seen, d.policy_state, d.checkpoint_id,
       COALESCE(d.checkpoint_id = c.checkpoint_id AND octet_length(d.journal) >= c.position,
                false) AS cached,
       CASE WHEN d.checkpoint_id = c.checkpoint_id AND octet_length(d.journal) >= c.position
            THEN NULL ELSE d.state END AS state,
       CASE WHEN d.checkpoint_id = c.checkpoint_id AND octet_length(d.journal) >= c.position
            THEN substr(d.journal, c.position + 1) ELSE d.journal END AS journal"""
_LOCK_FROM = """
  FROM unnest($2::text[], $3::int8[], $4::int4[]) AS c(id, checkpoint_id, position)
  JOIN np_anomaly_detectors d ON d.source_account_id = $1 AND d.id = c.id
 WHERE d.id = ANY($2::text[])  -- an index condition whatever the join order
 ORDER BY d.id
   FOR UPDATE OF d
"""
LOCK_SQL = _LOCK_COLUMNS + _LOCK_FROM
# The same, also switching the transaction to session_replication_role = replica: the
# points written next reference detectors locked here, so their per-row foreign-key
# check is skipped, and Hasura's event trigger does not fire for points scored already.
LOCK_REPLICA_SQL = (
    _LOCK_COLUMNS
    + """,
       set_config('session_replication_role', 'replica', true) AS replica"""
    + _LOCK_FROM
)
# the learned state of locked detectors from scratch (a cached one that does not fit)
FULL_STATE_SQL = """
SELECT id, state, journal FROM np_anomaly_detectors
 WHERE source_account_id = $1 AND id = ANY($2::text[])
"""
# whether the pool's role may switch session_replication_role (PostgreSQL 15 and newer)
REPLICA_PRIVILEGE_SQL = "SELECT has_parameter_privilege('session_replication_role', 'SET')"

# after the lock (a fresh snapshot in READ COMMITTED): which submitted points exist
DUPLICATES_SQL = """
WITH q AS (SELECT * FROM unnest($2::text[], $3::timestamptz[]) AS q(detector_id, ts)),
mx AS (
    SELECT d.detector_id,
           (SELECT max(p.ts) FROM np_anomaly_data_points p
             WHERE p.source_account_id = $1 AND p.detector_id = d.detector_id) AS max_ts
      FROM (SELECT DISTINCT detector_id FROM q) d
)
SELECT q.detector_id, q.ts
  FROM q JOIN mx USING (detector_id)
 WHERE q.ts <= mx.max_ts
   AND EXISTS (SELECT 1 FROM np_anomaly_data_points p
                WHERE p.source_account_id = $1 AND p.detector_id = q.detector_id
                  AND p.ts = q.ts)
"""

# Column arrays of the points ($2..$12): key (detector_id text, or id bigint for the event
# path), ts as epoch microseconds, value, score, expected, lower, upper, late; then the
# anomalies only: their 1-based position, severity and context (most points are normal,
# and sparse arrays are much cheaper to send).
_POINTS_SOURCE = """
    SELECT u.key, timestamptz 'epoch' + u.us * interval '1 microsecond' AS ts, u.value,
           u.score, a.n IS NOT NULL AS is_anomaly, a.severity,
           NULLIF(u.expected, 'NaN') AS expected, NULLIF(u.lower, 'NaN') AS lower,
           NULLIF(u.upper, 'NaN') AS upper, a.context, u.late, u.n
      FROM unnest($2::{key}[], $3::int8[], $4::float8[], $5::float8[], $6::float8[],
                  $7::float8[], $8::float8[], $9::bool[])
           WITH ORDINALITY AS u(key, us, value, score, expected, lower, upper, late, n)
      LEFT JOIN unnest($10::int8[], $11::text[], $12::jsonb[]) AS a(n, severity, context)
             ON a.n = u.n
"""

# A plain INSERT: the duplicates were looked up under the lock, so a conflict can only
# be a row inserted without the lock (through Hasura); it aborts the transaction, which
# is redone with every point looked up and ON CONFLICT DO NOTHING (speculative insertion
# costs a sixth of a bulk insert, so only that rare retry pays for it).
_INSERT_CTE = "".join(
    (
        """
ins AS (
    INSERT INTO np_anomaly_data_points
        (source_account_id, detector_id, ts, value, score, is_anomaly, severity, expected,
         lower, upper, context, late, status)
    SELECT $1, s.key, s.ts, s.value, s.score, s.is_anomaly, s.severity, s.expected, s.lower,
           s.upper, s.context, s.late, CASE WHEN s.is_anomaly THEN 'open' END
      FROM (""",
        _POINTS_SOURCE.replace("{key}", "text"),
        """) AS s
     ORDER BY s.n{conflict}
    RETURNING id, detector_id, ts, is_anomaly, late, ingested_at
)""",
    )
)

# the event trigger's variant: the rows exist, unscored ($2 carries their ids)
_UPDATE_CTE = "".join(
    (
        """
ins AS (
    UPDATE np_anomaly_data_points p SET
        score = s.score, is_anomaly = s.is_anomaly, severity = s.severity,
        expected = s.expected, lower = s.lower, upper = s.upper, context = s.context,
        late = s.late,
        status = CASE WHEN s.is_anomaly THEN COALESCE(p.status, 'open') ELSE p.status END
      FROM (""",
        _POINTS_SOURCE.replace("{key}", "int8"),
        """) AS s
     WHERE p.source_account_id = $1 AND p.id = s.key AND p.score IS NULL
    RETURNING p.id, p.detector_id, p.ts, p.is_anomaly, p.late, p.ingested_at
)""",
    )
)

# Detectors ($13..$28): id; the learned state (checkpoint?, its state, the journal bytes to
# append, or with a checkpoint the whole journal after it); the threshold state; n_seen,
# warmup; counters and the latest point; whether the detector is still learning (its own
# verdict: status `learning`); the open episode's dedup key and when the paging worker
# ends it if no point comes (NULL: nothing to resolve then). Unchanged state and journal
# are not rewritten; a detector only counted (duplicates) keeps its threshold state.
# Pages ($29..$36): one outbox row per episode, at its first eligible anomaly. Resolves
# ($37..$39): the dedup keys of episodes that ended, whose alert is to be resolved; a row
# only for an episode with an open-page row (written before, or in this statement). Both
# are due at once: $40 is the ingest's clock (the sender's clock decides from then on).
_WRITE_TAIL = """,
counted AS (
    SELECT detector_id, count(*) AS accepted,
           count(*) FILTER (WHERE is_anomaly) AS anomalies,
           count(*) FILTER (WHERE late) AS late
      FROM ins GROUP BY detector_id
),
upd AS (
    UPDATE np_anomaly_detectors d SET
        state = CASE WHEN s.checkpoint THEN s.state ELSE d.state END,
        journal = CASE WHEN s.checkpoint THEN s.journal
                       WHEN octet_length(s.journal) = 0 THEN d.journal
                       ELSE d.journal || s.journal END,
        checkpoint_id = CASE WHEN s.checkpoint
                             THEN nextval('public.np_anomaly_checkpoint_seq')
                             ELSE d.checkpoint_id END,
        policy_state = COALESCE(s.policy_state, d.policy_state),
        n_seen = COALESCE(s.n_seen, d.n_seen),
        warmup = COALESCE(s.warmup, d.warmup),
        learning = COALESCE(s.learning, d.learning),
        episode_key = CASE WHEN s.policy_state IS NULL THEN d.episode_key
                           ELSE s.episode_key END,
        episode_ends_at = CASE WHEN s.policy_state IS NULL THEN d.episode_ends_at
                               ELSE s.episode_ends_at END,
        points_count = d.points_count + COALESCE(c.accepted, 0),
        anomalies_count = d.anomalies_count + COALESCE(c.anomalies, 0),
        late_count = d.late_count + COALESCE(c.late, 0),
        duplicates_count = d.duplicates_count + s.duplicates
                           + GREATEST(s.submitted - COALESCE(c.accepted, 0), 0),
        last_ts = COALESCE(s.last_ts, d.last_ts),
        last_value = CASE WHEN s.last_ts IS NULL THEN d.last_value ELSE s.last_value END,
        last_score = CASE WHEN s.last_ts IS NULL THEN d.last_score ELSE s.last_score END,
        last_anomaly_at = GREATEST(d.last_anomaly_at, s.last_anomaly_at),
        updated_at = now()
      FROM unnest($13::text[], $14::bool[], $15::jsonb[], $16::bytea[], $17::jsonb[],
                  $18::bigint[], $19::int[], $20::int[], $21::int[], $22::timestamptz[],
                  $23::float8[], $24::float8[], $25::timestamptz[], $26::bool[], $27::text[],
                  $28::timestamptz[])
           AS s(id, checkpoint, state, journal, policy_state, n_seen, warmup, submitted,
                duplicates, last_ts, last_value, last_score, last_anomaly_at, learning,
                episode_key, episode_ends_at)
      LEFT JOIN counted c ON c.detector_id = s.id
     WHERE d.source_account_id = $1 AND d.id = s.id AND d.id = ANY($13::text[])
    RETURNING d.id, d.checkpoint_id, octet_length(d.journal) AS journal_bytes
),
pages AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, point_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT $1, 'open', g.detector_id, ins.id, g.policy_id, g.dedup_key, g.episode_start,
           g.severity, g.summary, g.details, $40
      FROM unnest($29::text[], $30::timestamptz[], $31::text[], $32::text[],
                  $33::timestamptz[], $34::text[], $35::text[], $36::jsonb[])
           AS g(detector_id, ts, policy_id, dedup_key, episode_start, severity, summary,
                details)
      JOIN ins ON ins.detector_id = g.detector_id AND ins.ts = g.ts
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id, detector_id, policy_id, dedup_key, episode_start, severity
),
opened AS (
    SELECT o.detector_id, o.policy_id, o.dedup_key, o.episode_start, o.severity
      FROM np_anomaly_page_outbox o
     WHERE o.source_account_id = $1 AND o.kind = 'open' AND o.dedup_key = ANY($37::text[])
    UNION ALL
    SELECT detector_id, policy_id, dedup_key, episode_start, severity FROM pages
),
resolves AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT $1, 'resolve', o.detector_id, o.policy_id, o.dedup_key, o.episode_start,
           o.severity, r.summary, r.details, $40
      FROM unnest($37::text[], $38::text[], $39::jsonb[]) AS r(dedup_key, summary, details)
      JOIN opened o ON o.dedup_key = r.dedup_key
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id
)
SELECT 1 AS kind, ins.id, ins.detector_id, ins.ts, ins.ingested_at,
       NULL::bigint AS a, NULL::bigint AS b
  FROM ins WHERE ins.is_anomaly
UNION ALL
SELECT 2, NULL, upd.id, NULL, NULL, upd.checkpoint_id, upd.journal_bytes FROM upd
UNION ALL
SELECT 3, NULL, NULL, NULL, NULL, (SELECT count(*) FROM ins),
       (SELECT count(*) FROM pages) + (SELECT count(*) FROM resolves)
"""

INSERT_SQL = "WITH" + _INSERT_CTE.replace("{conflict}", "") + _WRITE_TAIL
INSERT_CHECKED_SQL = (
    "WITH"
    + _INSERT_CTE.replace(
        "{conflict}", "\n    ON CONFLICT (source_account_id, detector_id, ts) DO NOTHING"
    )
    + _WRITE_TAIL
)
UPDATE_SQL = "WITH" + _UPDATE_CTE + _WRITE_TAIL


# the event path: the not-yet-scored points of one detector, oldest first
PENDING_SQL = """
SELECT id, ts, value FROM np_anomaly_data_points
 WHERE source_account_id = $1 AND detector_id = $2 AND score IS NULL
 ORDER BY ts
"""
# rows inserted directly with NaN/Infinity: scored 0 and never learned
NOT_FINITE_SQL = """
UPDATE np_anomaly_data_points
   SET score = 0, context = '{"explanation": "not a finite number: not scored"}'
 WHERE source_account_id = $1 AND id = ANY($2::bigint[])
"""
