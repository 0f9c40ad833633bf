"""The SQL of the ingest pipeline (see ``pipeline.py`` for the round trips it makes).

Every statement names ``source_account_id`` ($1) and runs in a tenant
transaction, so row-level security holds as a second wall.
"""

# The lock, in one statement: the detectors (configuration, `FOR UPDATE`, in id order),
# then the series asked for ($3..$6: detector id, series key, and the checkpoint id and
# journal bytes of the live model this process holds, NULLs when none), locked as well,
# so that both are read in their latest committed version (a concurrent update is waited
# for). `cached` says whether the held model is still current, and then only the unseen
# tail of the journal is returned; otherwise the checkpoint and the whole journal. A
# detector comes back once per series found, or once with NULL series columns; its JSON
# configuration (params, thresholds) only in its first row (a thousand series would
# otherwise decode it a thousand times).
_SERIES_STATE = """
       COALESCE(s.checkpoint_id = c.checkpoint_id AND octet_length(s.journal) >= c.position,
                false) AS cached,
       CASE WHEN s.checkpoint_id = c.checkpoint_id AND octet_length(s.journal) >= c.position
            THEN NULL ELSE s.state END AS state,
       CASE WHEN s.checkpoint_id = c.checkpoint_id AND octet_length(s.journal) >= c.position
            THEN substr(s.journal, c.position + 1) ELSE s.journal END AS journal"""
_LOCK_HEAD = """
WITH d AS MATERIALIZED (
    SELECT d.id, d.name, d.algorithm, d.params, d.thresholds, d.enabled,
           d.escalation_policy_id, d.group_by, d.max_series, d.series_count
      FROM np_anomaly_detectors d
     WHERE d.source_account_id = $1 AND d.id = ANY($2::text[])
     ORDER BY d.id
       FOR UPDATE
),
s AS MATERIALIZED (
    SELECT s.detector_id, s.series_key, s.last_ts, s.n_seen, s.policy_state, s.checkpoint_id,
           s.state IS NOT NULL AS checkpointed,"""
_LOCK_TAIL = """
      FROM unnest($3::text[], $4::text[], $5::int8[], $6::int4[])
           AS c(detector_id, series_key, checkpoint_id, position)
      JOIN d ON d.id = c.detector_id
      JOIN np_anomaly_series s
        ON s.source_account_id = $1 AND s.detector_id = c.detector_id
       AND s.series_key = c.series_key
     ORDER BY s.detector_id, s.series_key
       FOR UPDATE OF s
)
SELECT d.id, d.name, d.algorithm, d.enabled, d.escalation_policy_id, d.group_by,
       d.max_series, d.series_count,
       CASE WHEN row_number() OVER w = 1 THEN d.params END AS params,
       CASE WHEN row_number() OVER w = 1 THEN d.thresholds END AS thresholds,
       s.series_key, s.last_ts, s.n_seen, s.policy_state, s.checkpoint_id, s.cached,
       s.checkpointed, s.state, s.journal{replica}
  FROM d LEFT JOIN s ON s.detector_id = d.id
WINDOW w AS (PARTITION BY d.id ORDER BY s.series_key)
 ORDER BY d.id, s.series_key
"""
LOCK_SQL = _LOCK_HEAD + _SERIES_STATE + _LOCK_TAIL.replace("{replica}", "")
# The same, also switching the transaction to session_replication_role = replica: the
# points written next reference detectors locked here, so their per-row foreign-key
# check is skipped, and Hasura's event trigger does not fire for points scored already.
LOCK_REPLICA_SQL = (
    _LOCK_HEAD
    + _SERIES_STATE
    + _LOCK_TAIL.replace(
        "{replica}", ",\n       set_config('session_replication_role', 'replica', true) AS replica"
    )
)
# After the lock (so a fresh snapshot, and no writer can change them meanwhile: every
# writer of a series holds its detector's lock): series the lock did not ask for (a
# point's series depends on the detector's group_by, known once locked), in full.
SERIES_SQL = """
SELECT s.detector_id, s.series_key, s.last_ts, s.n_seen, s.policy_state, s.checkpoint_id,
       false AS cached, s.state IS NOT NULL AS checkpointed, s.state, s.journal
  FROM unnest($2::text[], $3::text[]) AS c(detector_id, series_key)
  JOIN np_anomaly_series s
    ON s.source_account_id = $1 AND s.detector_id = c.detector_id
   AND s.series_key = c.series_key
"""
# the learned state of locked series from scratch (a cached one that does not fit)
FULL_STATE_SQL = """
SELECT s.detector_id, s.series_key, s.state, s.journal
  FROM unnest($2::text[], $3::text[]) AS c(detector_id, series_key)
  JOIN np_anomaly_series s
    ON s.source_account_id = $1 AND s.detector_id = c.detector_id
   AND s.series_key = c.series_key
"""
# whether the pool's role may switch session_replication_role (PostgreSQL 15 and newer)
REPLICA_PRIVILEGE_SQL = "SELECT has_parameter_privilege('session_replication_role', 'SET')"

# after the lock (a fresh snapshot in READ COMMITTED): which submitted points exist
DUPLICATES_SQL = """
WITH q AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::timestamptz[])
           AS q(detector_id, series_key, ts)
),
mx AS (
    SELECT d.detector_id, d.series_key,
           (SELECT max(p.ts) FROM np_anomaly_data_points p
             WHERE p.source_account_id = $1 AND p.detector_id = d.detector_id
               AND p.series_key = d.series_key) AS max_ts
      FROM (SELECT DISTINCT detector_id, series_key FROM q) d
)
SELECT q.detector_id, q.series_key, q.ts
  FROM q JOIN mx USING (detector_id, series_key)
 WHERE q.ts <= mx.max_ts
   AND EXISTS (SELECT 1 FROM np_anomaly_data_points p
                WHERE p.source_account_id = $1 AND p.detector_id = q.detector_id
                  AND p.series_key = q.series_key AND p.ts = q.ts)
"""

# Column arrays of the points ($2..$13): key (detector ids as one newline-separated text,
# or row ids bigint[] for the event path), series keys (one newline-separated text: a
# canonical key is JSON, whose strings never hold a raw newline; one string is far
# cheaper to send than a text[] of 10,000), ts as epoch microseconds, value, score,
# expected, lower, upper, late; then the anomalies only: their 1-based position,
# severity and context (most points are normal, and sparse arrays are much cheaper to
# send).
_POINTS_SOURCE = """
    SELECT u.key, u.series_key, timestamptz 'epoch' + u.us * interval '1 microsecond' AS ts,
           u.value, u.score, a.n IS NOT NULL AS is_anomaly, a.severity,
           NULLIF(u.expected, 'NaN') AS expected, NULLIF(u.lower, 'NaN') AS lower,
           NULLIF(u.upper, 'NaN') AS upper, a.context, u.late, u.n
      FROM unnest({key}, string_to_array($3::text, E'\\n'), $4::int8[], $5::float8[],
                  $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bool[])
           WITH ORDINALITY
           AS u(key, series_key, us, value, score, expected, lower, upper, late, n)
      LEFT JOIN unnest($11::int8[], $12::text[], $13::jsonb[]) AS a(n, severity, context)
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
        (source_account_id, detector_id, series_key, ts, value, score, is_anomaly, severity,
         expected, lower, upper, context, late, status)
    SELECT $1, s.key, s.series_key, s.ts, s.value, s.score, s.is_anomaly, s.severity,
           s.expected, s.lower, s.upper, s.context, s.late,
           CASE WHEN s.is_anomaly THEN 'open' END
      FROM (""",
        _POINTS_SOURCE.replace("{key}", "string_to_array($2::text, E'\\n')"),
        """) AS s
     ORDER BY s.n{conflict}
    RETURNING id, detector_id, series_key, ts, is_anomaly, late, ingested_at
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
        _POINTS_SOURCE.replace("{key}", "$2::int8[]"),
        """) AS s
     WHERE p.source_account_id = $1 AND p.id = s.key AND p.score IS NULL
    RETURNING p.id, p.detector_id, p.series_key, p.ts, p.is_anomaly, p.late, p.ingested_at
)""",
    )
)

# Series ($14..$31): detector id, series key, whether it is new (inserted, else updated);
# the learned state (checkpoint?, its state, the journal bytes to append, or with a
# checkpoint the whole journal after it); the threshold state (one JSON array for all
# the series, null for none: as a jsonb[], each element was a JSON encoding of its own);
# n_seen, warmup; counters and the latest point; whether the model is still learning
# (its own verdict: status `learning`); the open episode's dedup key and when the
# paging worker ends it if no point comes (NULL: nothing to resolve then). Unchanged
# state and journal are not rewritten; a series only counted (duplicates) keeps its
# threshold state. New series bump their detector's series_count (the max_series bound).
# Pages ($32..$40): one outbox row per episode, at its first eligible anomaly. Resolves
# ($41..$43): the dedup keys of episodes that ended, whose alert is to be resolved; a row
# only for an episode with an open-page row (written before, or in this statement). Both
# are due at once: $44 is the ingest's clock (the sender's clock decides from then on).
_WRITE_TAIL = """,
counted AS (
    SELECT detector_id, series_key, count(*) AS accepted,
           count(*) FILTER (WHERE is_anomaly) AS anomalies,
           count(*) FILTER (WHERE late) AS late
      FROM ins GROUP BY detector_id, series_key
),
sv AS (
    SELECT s.*, COALESCE(c.accepted, 0) AS accepted, COALESCE(c.anomalies, 0) AS anomalies,
           COALESCE(c.late, 0) AS late_points
      FROM unnest($14::text[], $15::text[], $16::bool[], $17::bool[], $18::jsonb[],
                  $19::bytea[],
                  ARRAY(SELECT NULLIF(e.state, 'null')
                          FROM jsonb_array_elements($20::text::jsonb) WITH ORDINALITY
                               AS e(state, n)
                         ORDER BY e.n),
                  $21::bigint[], $22::int[], $23::int[],
                  $24::int[], $25::timestamptz[], $26::float8[], $27::float8[],
                  $28::timestamptz[], $29::bool[], $30::text[], $31::timestamptz[])
           AS s(detector_id, series_key, new, checkpoint, state, journal, policy_state,
                n_seen, warmup, submitted, duplicates, last_ts, last_value, last_score,
                last_anomaly_at, learning, episode_key, episode_ends_at)
      LEFT JOIN counted c ON c.detector_id = s.detector_id AND c.series_key = s.series_key
),
created AS (
    INSERT INTO np_anomaly_series
        (source_account_id, detector_id, series_key, labels, state, journal, policy_state,
         n_seen, warmup, learning, points_count, anomalies_count, late_count,
         duplicates_count, last_ts, last_value, last_score, last_anomaly_at, episode_key,
         episode_ends_at)
    SELECT $1, s.detector_id, s.series_key, s.series_key::jsonb, s.state, s.journal,
           s.policy_state, COALESCE(s.n_seen, 0), COALESCE(s.warmup, 0),
           COALESCE(s.learning, true), s.accepted, s.anomalies, s.late_points,
           s.duplicates + GREATEST(s.submitted - s.accepted, 0), s.last_ts, s.last_value,
           s.last_score, s.last_anomaly_at, s.episode_key, s.episode_ends_at
      FROM sv s WHERE s.new
     ORDER BY s.detector_id, s.series_key  -- ids in key order within a transaction
    RETURNING detector_id, series_key, checkpoint_id, octet_length(journal) AS journal_bytes
),
bumped AS (
    UPDATE np_anomaly_detectors d SET series_count = d.series_count + n.count
      FROM (SELECT detector_id, count(*) AS count FROM created GROUP BY detector_id) AS n
     WHERE d.source_account_id = $1 AND d.id = n.detector_id
    RETURNING d.id
),
upd AS (
    UPDATE np_anomaly_series d SET
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
        points_count = d.points_count + s.accepted,
        anomalies_count = d.anomalies_count + s.anomalies,
        late_count = d.late_count + s.late_points,
        duplicates_count = d.duplicates_count + s.duplicates
                           + GREATEST(s.submitted - s.accepted, 0),
        last_ts = COALESCE(s.last_ts, d.last_ts),
        last_value = CASE WHEN s.last_ts IS NULL THEN d.last_value ELSE s.last_value END,
        last_score = CASE WHEN s.last_ts IS NULL THEN d.last_score ELSE s.last_score END,
        last_anomaly_at = GREATEST(d.last_anomaly_at, s.last_anomaly_at),
        updated_at = now()
      FROM sv s
     WHERE NOT s.new AND d.source_account_id = $1 AND d.detector_id = s.detector_id
       AND d.series_key = s.series_key
    RETURNING d.detector_id, d.series_key, d.checkpoint_id,
              octet_length(d.journal) AS journal_bytes
),
pages AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, point_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT $1, 'open', g.detector_id, ins.id, g.policy_id, g.dedup_key, g.episode_start,
           g.severity, g.summary, g.details, $44
      FROM unnest($32::text[], $33::text[], $34::timestamptz[], $35::text[], $36::text[],
                  $37::timestamptz[], $38::text[], $39::text[], $40::jsonb[])
           AS g(detector_id, series_key, ts, policy_id, dedup_key, episode_start, severity,
                summary, details)
      JOIN ins ON ins.detector_id = g.detector_id AND ins.series_key = g.series_key
              AND ins.ts = g.ts
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id, detector_id, policy_id, dedup_key, episode_start, severity
),
opened AS (
    SELECT o.detector_id, o.policy_id, o.dedup_key, o.episode_start, o.severity
      FROM np_anomaly_page_outbox o
     WHERE o.source_account_id = $1 AND o.kind = 'open' AND o.dedup_key = ANY($41::text[])
    UNION ALL
    SELECT detector_id, policy_id, dedup_key, episode_start, severity FROM pages
),
resolves AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, kind, detector_id, policy_id, dedup_key, episode_start,
         severity, summary, details, next_attempt_at)
    SELECT $1, 'resolve', o.detector_id, o.policy_id, o.dedup_key, o.episode_start,
           o.severity, r.summary, r.details, $44
      FROM unnest($41::text[], $42::text[], $43::jsonb[]) AS r(dedup_key, summary, details)
      JOIN opened o ON o.dedup_key = r.dedup_key
    ON CONFLICT (source_account_id, dedup_key, kind) DO NOTHING
    RETURNING id
)
SELECT 1 AS kind, ins.id, ins.detector_id, ins.series_key, ins.ts, ins.ingested_at,
       NULL::bigint AS a, NULL::bigint AS b
  FROM ins WHERE ins.is_anomaly
UNION ALL
SELECT 2, NULL, upd.detector_id, upd.series_key, NULL, NULL, upd.checkpoint_id,
       upd.journal_bytes FROM upd
UNION ALL
SELECT 2, NULL, created.detector_id, created.series_key, NULL, NULL, created.checkpoint_id,
       created.journal_bytes FROM created
UNION ALL
SELECT 3, NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM ins),
       (SELECT count(*) FROM pages) + (SELECT count(*) FROM resolves)
"""

INSERT_SQL = "WITH" + _INSERT_CTE.replace("{conflict}", "") + _WRITE_TAIL
INSERT_CHECKED_SQL = (
    "WITH"
    + _INSERT_CTE.replace(
        "{conflict}",
        "\n    ON CONFLICT (source_account_id, detector_id, series_key, ts) DO NOTHING",
    )
    + _WRITE_TAIL
)
UPDATE_SQL = "WITH" + _UPDATE_CTE + _WRITE_TAIL


# the event path: the not-yet-scored points of one detector, oldest first
PENDING_SQL = """
SELECT id, series_key, ts, value FROM np_anomaly_data_points
 WHERE source_account_id = $1 AND detector_id = $2 AND score IS NULL
 ORDER BY ts
"""
# rows inserted directly with NaN/Infinity: scored 0 and never learned
NOT_FINITE_SQL = """
UPDATE np_anomaly_data_points
   SET score = 0, context = '{"explanation": "not a finite number: not scored"}'
 WHERE source_account_id = $1 AND id = ANY($2::bigint[])
"""
