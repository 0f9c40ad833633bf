"""The scoring pipeline shared by REST ingest, the Hasura action and the event trigger.

One short tenant transaction per call (or per group of coalesced single-point
requests, see ``coalesce.py``), four round trips:

1. ``BEGIN`` and the tenant scope, in one message;
2. lock the detectors concerned (``SELECT ... ORDER BY id FOR UPDATE``: several
   replicas and connections serialise per detector, never deadlock). The same
   statement returns what this process needs to have each detector's model:
   nothing when the model it keeps in memory (``modelcache``) is current, the
   journal bytes it has not seen when another replica ingested meanwhile, or
   the checkpoint and the whole journal otherwise;
   (only if some points are not newer than their detector's latest: one
   statement finds those already stored, the duplicates;)
3. score each detector's points vectorised, in timestamp order: points newer
   than its latest are learned, older ones are *late* (scored against the
   current model with ``learn=False``); then write everything with ONE
   statement: the points (multi-row ``INSERT ... SELECT FROM unnest(...)``,
   or an ``UPDATE`` of the not-yet-scored rows for the event trigger), the
   detectors' counters, threshold state and model (the learned points
   appended to the journal, or now and then a new checkpoint), and the outbox
   rows of new anomaly episodes to page. A large call is written in parts
   (by detector), each sent before the next is scored;
4. ``COMMIT``; only then does the model go back to the in-memory cache.

The model is never lost: checkpoint + journal in the detector row always
rebuild it exactly (each journal chunk replays one scoring call, the same
arithmetic on the same inputs), and both are written in the transaction that
stores the points. The pure part (``score_series``) does no I/O and is what
backtests use.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import numpy as np

from services.anomaly import detectors, modelcache, statecodec
from services.anomaly.detectors import base as detector_base
from services.anomaly.policy_one import apply_one
from services.anomaly.thresholds import Thresholds, parse_thresholds
from services.common.db import APP_ROLE, tenant_transaction
from services.common.errors import ApiError, Conflict, NotFound, ValidationFailed
from services.common.metrics import ANOMALIES, POINTS_INGESTED

SOURCE = "nself-anomaly"
log = logging.getLogger("nsentry.anomaly.scoring")

# A new checkpoint is written once the journal holds this many scoring calls or points
# (whichever first): bounded rows and replays, and a full state written rarely.
CHECKPOINT_CHUNKS = 64
CHECKPOINT_POINTS = 1000


# -- the model ----------------------------------------------------------------
def build_model(algorithm: str, params: dict[str, Any]) -> detector_base.Detector:
    """A detector instance; raises ``InvalidParams`` (field, message)."""
    return detectors.create(algorithm, params)


@dataclass
class ScoredSeries:
    """Results of one detector's points, aligned with the (sorted) input."""

    score: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    is_anomaly: np.ndarray
    severity: list[str | None]
    episode_start: list[float | None]
    opens_episode: np.ndarray
    explanation: list[str | None]
    details: list[float | None]
    policy_state: dict[str, Any]
    n_seen: int
    warmup: int


def score_points(
    model: detector_base.Detector,
    policy: Thresholds,
    policy_state: dict[str, Any],
    epoch: np.ndarray,
    values: np.ndarray,
    late: np.ndarray,
) -> ScoredSeries:
    """Score one detector's points with a live model (which learns the non-late ones).

    Late points are scored first, against the model as it is and without
    learning; the others are then learned in order, in one ``score`` call. The
    threshold policy turns scores into anomalies; only learned points move its
    state (runs, episodes), and a late anomaly never opens or joins an episode.
    """
    n = values.shape[0]
    if n == 1:
        return _score_one(model, policy, policy_state, epoch, values, bool(late[0]))
    score = np.zeros(n)
    expected = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    is_anomaly = np.zeros(n, dtype=bool)
    opens = np.zeros(n, dtype=bool)
    severity: list[str | None] = [None] * n
    episode: list[float | None] = [None] * n
    explanation: list[str | None] = [None] * n
    details: list[float | None] = [None] * n

    passes = ((False, late), (True, ~late)) if late.any() else ((True, None),)
    for learn, mask in passes:
        idx = np.flatnonzero(mask) if mask is not None else None
        if idx is not None and idx.size == 0:
            continue
        ts = epoch[idx] if idx is not None else epoch
        vs = values[idx] if idx is not None else values
        scores = model.score(ts, vs, learn=learn)
        outcome = policy.apply(ts, vs, scores, policy_state, learn=learn)
        where: Any = idx if idx is not None else slice(None)
        if learn:
            policy_state = outcome.state.model_dump()
            opens[where] = outcome.opens_episode(ts)
        score[where] = scores.score
        expected[where] = scores.expected
        lower[where] = scores.lower
        upper[where] = scores.upper
        is_anomaly[where] = outcome.is_anomaly
        for k in np.flatnonzero(outcome.is_anomaly).tolist():
            i = int(idx[k]) if idx is not None else k
            point = scores.point(k)
            start = float(outcome.episode_start[k])
            severity[i] = outcome.severity[k]
            episode[i] = None if math.isnan(start) else start
            explanation[i] = model.explain(float(values[i]), point)
            details[i] = point.detail
    return ScoredSeries(
        score=score,
        expected=expected,
        lower=lower,
        upper=upper,
        is_anomaly=is_anomaly,
        severity=severity,
        episode_start=episode,
        opens_episode=opens,
        explanation=explanation,
        details=details,
        policy_state=policy_state,
        n_seen=int(model.n_seen),
        warmup=int(model.warmup),
    )


def _score_one(
    model: detector_base.Detector,
    policy: Thresholds,
    policy_state: dict[str, Any],
    epoch: np.ndarray,
    values: np.ndarray,
    late: bool,
) -> ScoredSeries:
    """``score_points`` of one point (the threshold policy without arrays)."""
    scores = model.score(epoch, values, learn=not late)
    point = scores.point(0)
    t, v = float(epoch[0]), float(values[0])
    is_anomaly, severity, start, after = apply_one(
        policy, t, v, point.score, point.expected, policy_state, learn=not late
    )
    anomalous = np.array([is_anomaly])
    episode = None if math.isnan(start) else start
    return ScoredSeries(
        score=scores.score.astype(np.float64, copy=False),
        expected=scores.expected.astype(np.float64, copy=False),
        lower=scores.lower.astype(np.float64, copy=False),
        upper=scores.upper.astype(np.float64, copy=False),
        is_anomaly=anomalous,
        severity=[severity],
        episode_start=[episode],
        opens_episode=np.array([is_anomaly and not late and start == t]),
        explanation=[model.explain(v, point) if is_anomaly else None],
        details=[point.detail if is_anomaly else None],
        policy_state=after if not late else policy_state,
        n_seen=int(model.n_seen),
        warmup=int(model.warmup),
    )


def score_series(
    *,
    algorithm: str,
    params: dict[str, Any],
    thresholds: dict[str, Any],
    state: dict[str, Any] | None,
    epoch: np.ndarray,
    values: np.ndarray,
    late: np.ndarray,
) -> ScoredSeries:
    """Score one detector's points (sorted by time, late ones flagged); pure.

    ``state``: ``{"model": <packed get_state()>, "policy": <threshold state>}``
    or None for a fresh model (what backtests use).
    """
    model = build_model(algorithm, params)
    state = state or {}
    if state.get("model") is not None:
        model.set_state(statecodec.unpack(state["model"]))
    return score_points(
        model, parse_thresholds(thresholds), state.get("policy") or {}, epoch, values, late
    )


# -- the database pipeline -----------------------------------------------------
class PointLike(Protocol):
    """A point to ingest (``models.PointIn`` or anything shaped like it)."""

    @property
    def detector_id(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def value(self) -> float: ...


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "late": self.late,
            "anomalies": self.anomalies,
        }


# The lock. $2..$4 describe the models this process holds (id, checkpoint id, journal
# bytes seen; NULLs when none): `cached` says whether such a model is still good, and
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
_LOCK_SQL = _LOCK_COLUMNS + _LOCK_FROM
# The same, also switching the transaction to session_replication_role = replica: the
# points written next reference detectors locked here, so their per-row foreign-key
# check is skipped, and Hasura's event trigger does not fire for points scored already.
_LOCK_REPLICA_SQL = (
    _LOCK_COLUMNS
    + """,
       set_config('session_replication_role', 'replica', true) AS replica"""
    + _LOCK_FROM
)
# the models of locked detectors from scratch (a cached model that does not fit after all)
_FULL_STATE_SQL = """
SELECT id, state, journal FROM np_anomaly_detectors
 WHERE source_account_id = $1 AND id = ANY($2::text[])
"""
# id(pool) -> (pool, allowed); the pool is kept so that its id cannot be reused
_replica_allowed: dict[int, tuple[asyncpg.Pool, bool]] = {}


async def replica_allowed(pool: asyncpg.Pool) -> bool:
    """Whether the pool's role may set session_replication_role (probed once per pool)."""
    entry = _replica_allowed.get(id(pool))
    known = entry[1] if entry is not None and entry[0] is pool else None
    if known is None:
        try:
            known = bool(
                await pool.fetchval(
                    "SELECT has_parameter_privilege('session_replication_role', 'SET')"
                )
            )
        except asyncpg.PostgresError:  # before PostgreSQL 15: no such privilege
            known = False
        _replica_allowed[id(pool)] = (pool, known)
    return known


# after the lock (a fresh snapshot in READ COMMITTED): which submitted points exist
_DUPLICATES_SQL = """
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

# Detectors ($13..$25): id; the model (checkpoint?, its state, the journal bytes to append,
# or with a checkpoint the whole journal after it); the threshold state; n_seen, warmup;
# counters and the latest point. Unchanged state and journal are not rewritten.
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
                  $23::float8[], $24::float8[], $25::timestamptz[])
           AS s(id, checkpoint, state, journal, policy_state, n_seen, warmup, submitted,
                duplicates, last_ts, last_value, last_score, last_anomaly_at)
      LEFT JOIN counted c ON c.detector_id = s.id
     WHERE d.source_account_id = $1 AND d.id = s.id AND d.id = ANY($13::text[])
    RETURNING d.id, d.checkpoint_id, octet_length(d.journal) AS journal_bytes
),
pages AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, detector_id, point_id, policy_id, dedup_key, episode_start,
         severity, summary, details)
    SELECT $1, g.detector_id, ins.id, g.policy_id, g.dedup_key, g.episode_start, g.severity,
           g.summary, g.details
      FROM unnest($26::text[], $27::timestamptz[], $28::text[], $29::text[],
                  $30::timestamptz[], $31::text[], $32::text[], $33::jsonb[])
           AS g(detector_id, ts, policy_id, dedup_key, episode_start, severity, summary,
                details)
      JOIN ins ON ins.detector_id = g.detector_id AND ins.ts = g.ts
    ON CONFLICT (source_account_id, dedup_key) DO NOTHING
    RETURNING id
)
SELECT 1 AS kind, ins.id, ins.detector_id, ins.ts, ins.ingested_at,
       NULL::bigint AS a, NULL::bigint AS b
  FROM ins WHERE ins.is_anomaly
UNION ALL
SELECT 2, NULL, upd.id, NULL, NULL, upd.checkpoint_id, upd.journal_bytes FROM upd
UNION ALL
SELECT 3, NULL, NULL, NULL, NULL, (SELECT count(*) FROM ins), (SELECT count(*) FROM pages)
"""

INSERT_SQL = "WITH" + _INSERT_CTE.replace("{conflict}", "") + _WRITE_TAIL
INSERT_CHECKED_SQL = (
    "WITH"
    + _INSERT_CTE.replace(
        "{conflict}", "\n    ON CONFLICT (source_account_id, detector_id, ts) DO NOTHING"
    )
    + _WRITE_TAIL
)
# A large write goes out in parts of about this many points (by detector): Postgres
# stores one part while the next one is scored.
PART_POINTS = 2500
UPDATE_SQL = "WITH" + _UPDATE_CTE + _WRITE_TAIL


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dedup_key(account: str, detector_id: str, episode_start: datetime) -> str:
    return f"anomaly:{account}:{detector_id}:{iso(episode_start)}"


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# -- transactions ----------------------------------------------------------------
# account ids are checked at the door (auth.check_account_id); only such ids go into the
# one-message BEGIN (anything else takes tenant_transaction's parameterised round trip)
_PLAIN_ACCOUNT = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_BEGIN_SCOPED = (
    "BEGIN ISOLATION LEVEL READ COMMITTED; "
    "SELECT set_config('app.source_account_id', '{account}', true), "
    f"set_config('role', '{APP_ROLE}', true)"
)


@asynccontextmanager
async def scoped_transaction(pool: asyncpg.Pool, account: str) -> AsyncIterator[asyncpg.Connection]:
    """``tenant_transaction`` with BEGIN and the tenant scope in one round trip."""
    if not _PLAIN_ACCOUNT.fullmatch(account):
        async with tenant_transaction(pool, account) as conn:
            yield conn
        return
    async with pool.acquire() as conn:
        try:
            await conn.execute(_BEGIN_SCOPED.format(account=account))  # simple query protocol
            yield conn
        except BaseException:
            try:
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
            except Exception:
                conn.terminate()
            raise
        await conn.execute("COMMIT")


# -- one transaction's detectors ---------------------------------------------------
class _Raced(Exception):
    """The insert met rows the duplicate check did not look for; the call is redone."""


@dataclass
class _Live:
    """A locked detector: its row, its model as the transaction goes, what to write."""

    row: asyncpg.Record
    entry: modelcache.Entry | None
    last_ts: datetime | None
    policy_state: dict[str, Any]
    model: detector_base.Detector | None = None
    policy: Thresholds | None = None
    chunks: int = 0  # journaled since the checkpoint
    points: int = 0
    journal: bytearray = field(default_factory=bytearray)  # to append, or the whole one
    checkpoint: dict[str, Any] | None = None  # a new checkpoint to write
    existing: set[float] = field(default_factory=set)  # stored (epoch s), looked up
    scored: bool = False
    submitted: int = 0
    duplicates: int = 0
    last_point: tuple[datetime, float, float] | None = None
    last_anomaly_at: datetime | None = None

    def learned(self, epoch: np.ndarray, values: np.ndarray) -> None:
        """Journal a learned batch; checkpoint when the journal is long enough."""
        assert self.model is not None
        self.chunks += 1
        self.points += int(epoch.shape[0])
        if self.chunks >= CHECKPOINT_CHUNKS or self.points >= CHECKPOINT_POINTS:
            self.checkpoint = {"model": statecodec.pack(self.model.get_state())}
            self.journal = bytearray()
            self.chunks = self.points = 0
        else:
            self.journal += statecodec.journal_chunk(epoch, values)


@dataclass
class _Call:
    """One request's points within a transaction, and what it came to."""

    points: Sequence[PointLike]
    keys: Sequence[Any] | None = None  # event path: ids of the rows to score
    error: ApiError | None = None
    expected: int = 0  # points to store
    late: int = 0
    outcome: IngestOutcome = field(default_factory=IngestOutcome)
    _epoch: np.ndarray | None = None

    @property
    def epoch(self) -> np.ndarray:
        """The points' timestamps in epoch seconds (what the models see)."""
        if self._epoch is None:
            self._epoch = np.fromiter(
                (p.timestamp.timestamp() for p in self.points),
                dtype=np.float64,
                count=len(self.points),
            )
        return self._epoch


class _Stamps:
    """The timestamps of the points at ``order`` (looked up only for the few needed)."""

    def __init__(self, points: Sequence[PointLike], order: list[int]) -> None:
        self.points = points
        self.order = order

    def __getitem__(self, i: int) -> datetime:
        return self.points[self.order[i]].timestamp


class _Txn:
    """Detectors locked by one transaction, with their models, and the one write."""

    def __init__(self, account: str, cache: modelcache.ModelCache) -> None:
        self.account = account
        self.cache = cache
        self.live: dict[str, _Live] = {}
        self.points: list[list[Any]] = []
        self.pages: list[list[Any]] = []
        self.staged: list[str] = []  # the detectors of the part being staged
        self.new_part()
        self.anomaly_rows: dict[tuple[str, datetime], tuple[_Call, dict[str, Any]]] = {}
        self.pages_written = 0
        self._taken: dict[str, modelcache.Entry] = {}

    # -- lock and models
    async def lock(self, conn: asyncpg.Connection, detector_ids: list[str], replica: bool) -> None:
        checkpoints: list[int | None] = []
        positions: list[int | None] = []
        for detector_id in detector_ids:
            entry = self.cache.take(self.account, detector_id)
            if entry is not None:
                self._taken[detector_id] = entry
            checkpoints.append(entry.checkpoint_id if entry is not None else None)
            positions.append(entry.position if entry is not None else None)
        rows = await conn.fetch(
            _LOCK_REPLICA_SQL if replica else _LOCK_SQL,
            self.account,
            detector_ids,
            checkpoints,
            positions,
        )
        for row in rows:
            self.live[row["id"]] = _Live(
                row=row,
                entry=self._taken.get(row["id"]) if row["cached"] else None,
                last_ts=row["last_ts"],
                policy_state=row["policy_state"] or {},
            )
        for detector_id in list(self._taken):  # out of date, or the detector is gone
            live = self.live.get(detector_id)
            if live is None or live.entry is None:
                del self._taken[detector_id]

    async def load_models(self, conn: asyncpg.Connection) -> None:
        """Each scored detector's model: cached (plus the unseen journal) or rebuilt."""
        refetch: list[str] = []
        for detector_id, live in self.live.items():
            if not live.scored:
                continue
            row = live.row
            entry = live.entry
            if entry is not None and (
                entry.algorithm != row["algorithm"] or entry.params != row["params"]
            ):
                refetch.append(detector_id)  # configuration changed behind our back
                continue
            if entry is not None:
                self._taken.pop(detector_id, None)  # consumed: it changes from here on
                self.cache.hits += 1
                if row["journal"]:
                    self.cache.caught_up += 1
                live.model, live.chunks, live.points = entry.model, entry.chunks, entry.points
                self._replay(live, row["journal"])
            else:
                self.cache.misses += 1
                self._rebuild(live, row["state"], row["journal"])
        if refetch:
            for r in await conn.fetch(_FULL_STATE_SQL, self.account, refetch):
                live = self.live[r["id"]]
                self._taken.pop(r["id"], None)
                live.entry = None
                self.cache.misses += 1
                self._rebuild(live, r["state"], r["journal"])
        for live in self.live.values():
            if live.model is not None and live.model.n_seen != live.row["n_seen"]:
                log.error(
                    "detector %s/%s: rebuilt model has n_seen %d, the row says %d",
                    self.account,
                    live.row["id"],
                    live.model.n_seen,
                    live.row["n_seen"],
                )

    def _rebuild(self, live: _Live, state: dict[str, Any] | None, journal: bytes) -> None:
        live.model = build_model(live.row["algorithm"], live.row["params"])
        if state and state.get("model") is not None:
            live.model.set_state(statecodec.unpack(state["model"]))
        live.chunks = live.points = 0
        self._replay(live, journal)

    @staticmethod
    def _replay(live: _Live, journal: bytes) -> None:
        assert live.model is not None
        for epoch, values in statecodec.journal_chunks(journal):
            live.model.score(epoch, values, learn=True)
            live.chunks += 1
            live.points += int(epoch.shape[0])

    def finish(self, returned: dict[str, tuple[int, int]] | None) -> None:
        """After the transaction: the models of a committed one (``returned``: id ->
        checkpoint id, journal bytes) go to the cache; untouched entries go back."""
        for detector_id, entry in self._taken.items():
            self.cache.put(self.account, detector_id, entry)
        self._taken.clear()
        if returned is None:
            return
        for detector_id, live in self.live.items():
            if live.model is None or detector_id not in returned:
                continue
            checkpoint_id, position = returned[detector_id]
            self.cache.put(
                self.account,
                detector_id,
                modelcache.Entry(
                    model=live.model,
                    algorithm=live.row["algorithm"],
                    params=live.row["params"],
                    checkpoint_id=checkpoint_id,
                    position=position,
                    chunks=live.chunks,
                    points=live.points,
                ),
            )

    # -- scoring
    def score(
        self,
        call: _Call,
        detector_id: str,
        order: list[int],
        epoch: np.ndarray,
        late: np.ndarray,
    ) -> None:
        """Score a call's kept points of one detector (sorted by time) and stage them."""
        live = self.live[detector_id]
        assert live.model is not None
        if live.policy is None:
            live.policy = parse_thresholds(live.row["thresholds"])
        points = call.points
        n = len(order)
        values_list = [points[i].value for i in order]
        ts_list = _Stamps(points, order)
        values = np.asarray(values_list, dtype=np.float64)
        s = score_points(live.model, live.policy, live.policy_state, epoch, values, late)
        live.policy_state = s.policy_state
        learned = np.flatnonzero(~late)
        if learned.size:
            if learned.size == n:
                live.learned(epoch, values)
            else:
                live.learned(epoch[learned], values[learned])
            last = int(learned[-1])
            live.last_ts = ts_list[last]
            live.last_point = (ts_list[last], values_list[last], float(s.score[last]))
        anomalous = np.flatnonzero(s.is_anomaly).tolist()
        if anomalous:
            newest = max(ts_list[i] for i in anomalous)
            if live.last_anomaly_at is None or newest > live.last_anomaly_at:
                live.last_anomaly_at = newest
        keys = [detector_id] * n if call.keys is None else [call.keys[i] for i in order]
        if not self.staged or self.staged[-1] != detector_id:
            if detector_id not in self.staged:
                self.staged.append(detector_id)
        self._stage_points(call, live, keys, ts_list, values_list, epoch, late, s, anomalous)

    def _stage_points(
        self,
        call: _Call,
        live: _Live,
        keys: list[Any],
        ts_list: _Stamps,
        values_list: list[float],
        epoch: np.ndarray,
        late: np.ndarray,
        s: ScoredSeries,
        anomalous: list[int],
    ) -> None:
        row = live.row
        p = self.points
        offset = len(p[0])  # positions are 1-based over the whole transaction
        p[0].extend(keys)
        p[1].extend(np.rint(epoch * 1e6).astype(np.int64).tolist())
        p[2].extend(values_list)
        p[3].extend(s.score.tolist())
        p[4].extend(s.expected.tolist())
        p[5].extend(s.lower.tolist())
        p[6].extend(s.upper.tolist())
        p[7].extend(late.tolist())
        for i in anomalous:
            start = s.episode_start[i]
            context = {
                "explanation": s.explanation[i],
                "algorithm": row["algorithm"],
                "params": row["params"],
                "thresholds": row["thresholds"],
                "detail": s.details[i],
                "episode_start": iso(_from_epoch(start)) if start is not None else None,
                "n_seen": s.n_seen,
            }
            p[8].append(offset + i + 1)
            p[9].append(s.severity[i])
            p[10].append(context)
            ts = ts_list[i]
            self.anomaly_rows[(row["id"], ts)] = (
                call,
                {
                    "detector_id": row["id"],
                    "timestamp": ts.astimezone(UTC),
                    "value": values_list[i],
                    "score": float(s.score[i]),
                    "severity": s.severity[i],
                    "expected": _nan_none(float(s.expected[i])),
                    "lower": _nan_none(float(s.lower[i])),
                    "upper": _nan_none(float(s.upper[i])),
                    "late": bool(late[i]),
                    "explanation": s.explanation[i],
                    "episode_start": context["episode_start"],
                    "status": "open",
                    "note": None,
                    "reviewed_at": None,
                },
            )
            if s.opens_episode[i] and row["escalation_policy_id"] and start is not None:
                self._stage_page(row, ts, values_list[i], s, i, _from_epoch(start))

    def _stage_page(
        self,
        row: asyncpg.Record,
        ts: datetime,
        value: float,
        s: ScoredSeries,
        i: int,
        start: datetime,
    ) -> None:
        severity = s.severity[i] or "warning"
        g = self.pages
        g[0].append(row["id"])
        g[1].append(ts)
        g[2].append(row["escalation_policy_id"])
        g[3].append(dedup_key(self.account, row["id"], start))
        g[4].append(start)
        g[5].append(severity)
        g[6].append(f"Anomaly on {row['name']}: value {value:.6g} at {iso(ts)} ({severity})")
        g[7].append(
            {
                "detector_id": row["id"],
                "detector_name": row["name"],
                "account": self.account,
                "timestamp": iso(ts),
                "value": value,
                "score": float(s.score[i]),
                "expected": _nan_none(float(s.expected[i])),
                "lower": _nan_none(float(s.lower[i])),
                "upper": _nan_none(float(s.upper[i])),
                "explanation": s.explanation[i],
                "episode_start": iso(start),
            }
        )

    # -- the write
    def new_part(self) -> None:
        self.points = [[] for _ in range(11)]
        self.pages = [[] for _ in range(8)]
        self.staged = []

    def touched(self) -> list[str]:
        """Detectors to write (sorted): the ones with points submitted by a call that
        went through (stored, or duplicates to count)."""
        return [
            d
            for d in sorted(self.live)
            if self.live[d].submitted or self.live[d].duplicates or self.live[d].scored
        ]

    def write_args(self) -> list[Any]:
        """The arguments of the write statement for what is staged."""
        return [self.account, *self.points, *self._detector_columns(), *self.pages]

    def _detector_columns(self) -> list[list[Any]]:
        d: list[list[Any]] = [[] for _ in range(13)]
        for detector_id in self.staged:
            live = self.live[detector_id]
            model = live.model if live.scored else None  # None: the stored state stays
            d[0].append(detector_id)
            d[1].append(live.checkpoint is not None)
            d[2].append(live.checkpoint)
            d[3].append(bytes(live.journal))
            d[4].append(live.policy_state if model is not None else None)
            d[5].append(int(model.n_seen) if model is not None else None)
            d[6].append(int(model.warmup) if model is not None else None)
            d[7].append(live.submitted)
            d[8].append(live.duplicates)
            last = live.last_point
            d[9].append(last[0] if last else None)
            d[10].append(last[1] if last else None)
            d[11].append(last[2] if last else None)
            d[12].append(live.last_anomaly_at)
        return d

    async def write(
        self, conn: asyncpg.Connection, sql: str
    ) -> tuple[int, dict[str, tuple[int, int]]]:
        """Write what is staged; returns (points written, id -> (checkpoint id, journal
        bytes))."""
        returned: dict[str, tuple[int, int]] = {}
        written = self.absorb(await conn.fetch(sql, *self.write_args()), returned)
        return written, returned

    def absorb(self, rows: list[asyncpg.Record], returned: dict[str, tuple[int, int]]) -> int:
        """Take in what a write returned; returns the points it wrote."""
        written = 0
        for r in rows:
            kind = r["kind"]
            if kind == 3:
                written = int(r["a"])
                self.pages_written += int(r["b"])
            elif kind == 2:
                returned[r["detector_id"]] = (int(r["a"]), int(r["b"]))
            else:
                found = self.anomaly_rows.get((r["detector_id"], r["ts"]))
                if found is not None:
                    call, anomaly = found
                    call.outcome.anomalies.append(
                        {"id": r["id"], **anomaly, "ingested_at": r["ingested_at"]}
                    )
        return written


def _locate(points: Sequence[PointLike], detector_id: str) -> int:
    return next(i for i, p in enumerate(points) if p.detector_id == detector_id)


def _check_detectors(txn: _Txn, call: _Call, *, batch: bool, unknown_is_404: bool) -> bool:
    """Whether every detector of the call exists and is enabled (else ``call.error``)."""
    for detector_id in sorted({p.detector_id for p in call.points}):
        live = txn.live.get(detector_id)
        try:
            if live is None:
                _unknown_detector(
                    call.points, detector_id, batch=batch, unknown_is_404=unknown_is_404
                )
            elif not live.row["enabled"]:
                i = _locate(call.points, detector_id)
                raise Conflict(
                    f"detector {detector_id!r} is disabled"
                    + (f" (points.{i}.detector_id)" if batch else ""),
                    details={"detector_id": detector_id, **({"index": i} if batch else {})},
                )
        except ApiError as exc:
            call.error = exc
            return False
    return True


Selected = dict[str, tuple[list[int], np.ndarray, np.ndarray]]


def _select_points(txn: _Txn, call: _Call) -> Selected:
    """Per detector: the call's points to store (indices, epoch seconds), sorted by time
    (duplicates counted and left out; of points repeated in the call the first is kept),
    and which of them are late. Moves the detectors' bookkeeping along."""
    points = call.points
    epoch_all = call.epoch
    by_detector: dict[str, list[int]]
    if len(points) == 1:
        by_detector = {points[0].detector_id: [0]}
    else:
        by_detector = defaultdict(list)
        for i, p in enumerate(points):
            by_detector[p.detector_id].append(i)
    selected: Selected = {}
    for detector_id in sorted(by_detector):
        live = txn.live[detector_id]
        index = np.asarray(by_detector[detector_id], dtype=np.int64)
        epoch = epoch_all[index]
        if index.size > 1:
            order = np.argsort(epoch, kind="stable")
            index, epoch = index[order], epoch[order]
            keep = np.ones(index.size, dtype=bool)
            keep[1:] = epoch[1:] != epoch[:-1]
        else:
            keep = np.ones(1, dtype=bool)
        if live.existing:
            keep &= ~np.isin(epoch, np.fromiter(live.existing, dtype=np.float64))
        duplicates = int(index.size - keep.sum())
        if duplicates:
            index, epoch = index[keep], epoch[keep]
        live.duplicates += duplicates
        live.submitted += int(index.size)
        call.outcome.duplicates += duplicates
        if not index.size:
            continue
        live.existing.update(epoch.tolist())
        if live.last_ts is None:
            late = np.zeros(index.size, dtype=bool)
        else:
            late = epoch <= live.last_ts.timestamp()
        live.scored = True
        call.expected += int(index.size)
        call.late += int(late.sum())
        selected[detector_id] = (index.tolist(), epoch, late)
    return selected


async def _find_duplicates(
    conn: asyncpg.Connection, txn: _Txn, calls: Sequence[_Call], check_all: bool
) -> None:
    """Record in each detector which submitted points are stored already.

    Points newer than their detector's latest learned point cannot repeat a point stored
    through this pipeline (the lock orders them), so only the others are looked up; a
    collision with a row inserted otherwise is caught by ON CONFLICT and the transaction
    redone with every point looked up.
    """
    ids: list[str] = []
    stamps: list[datetime] = []
    latest = {
        d: live.last_ts.timestamp() for d, live in txn.live.items() if live.last_ts is not None
    }
    for call in calls:
        if check_all:
            candidates: Any = range(len(call.points))
        else:
            if not latest:
                continue
            bound = np.array([latest.get(p.detector_id, -np.inf) for p in call.points])
            candidates = np.flatnonzero(call.epoch <= bound).tolist()
        for i in candidates:
            ids.append(call.points[i].detector_id)
            stamps.append(call.points[i].timestamp)
    if ids:
        for r in await conn.fetch(_DUPLICATES_SQL, txn.account, ids, stamps):
            txn.live[r["detector_id"]].existing.add(r["ts"].timestamp())


def _parts(txn: _Txn) -> list[list[str]]:
    """The touched detectors in parts of about ``PART_POINTS`` points (sorted by id)."""
    parts: list[list[str]] = [[]]
    size = 0
    for detector_id in txn.touched():
        if size >= PART_POINTS:
            parts.append([])
            size = 0
        parts[-1].append(detector_id)
        size += txn.live[detector_id].submitted
    return parts


async def _score_and_write(
    conn: asyncpg.Connection,
    txn: _Txn,
    plans: list[tuple[_Call, Selected]],
    sql: str,
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Score the calls and write them, a part at a time: while Postgres stores one
    part, the next is scored (a detector's calls stay in order within its part)."""
    written = 0
    returned: dict[str, tuple[int, int]] = {}
    inflight: asyncio.Future[list[asyncpg.Record]] | None = None
    try:
        for part in _parts(txn):
            txn.new_part()
            members = set(part)
            for call, selected in plans:
                for detector_id, (order, epoch, late) in selected.items():
                    if detector_id in members:
                        txn.score(call, detector_id, order, epoch, late)
            txn.staged = part  # every detector of the part, scored or only counted
            args = txn.write_args()
            if inflight is not None:
                written += txn.absorb(await inflight, returned)
            inflight = asyncio.ensure_future(conn.fetch(sql, *args))
            await asyncio.sleep(0)  # let the statement go out before scoring the next part
        assert inflight is not None
        written += txn.absorb(await inflight, returned)
        inflight = None
    finally:
        if inflight is not None and not inflight.done():
            # a part failed to score: let the running statement end before the rollback
            await asyncio.wait([inflight])
            if not inflight.cancelled():
                inflight.exception()
    return written, returned


async def _run(
    pool: asyncpg.Pool,
    account: str,
    calls: Sequence[_Call],
    *,
    batch: bool,
    unknown_is_404: bool,
    check_all: bool,
    isolate_errors: bool,
) -> int:
    """Ingest the calls in order in one transaction; returns the pages queued.

    ``isolate_errors``: an unknown or disabled detector fails only its own call (the
    others go on); otherwise it is raised and nothing is written.
    """
    detector_ids = sorted({p.detector_id for call in calls for p in call.points})
    replica = await replica_allowed(pool)
    txn = _Txn(account, modelcache.for_pool(pool))
    returned = None
    written = 0
    live_calls: list[_Call] = []
    try:
        async with scoped_transaction(pool, account) as conn:
            await txn.lock(conn, detector_ids, replica)
            for call in calls:
                if not _check_detectors(txn, call, batch=batch, unknown_is_404=unknown_is_404):
                    if not isolate_errors:
                        assert call.error is not None
                        raise call.error
                else:
                    live_calls.append(call)
            if not live_calls:
                return 0
            await _find_duplicates(conn, txn, live_calls, check_all)
            plans = [(call, _select_points(txn, call)) for call in live_calls]
            await txn.load_models(conn)
            try:
                written, committed = await _score_and_write(
                    conn, txn, plans, INSERT_CHECKED_SQL if check_all else INSERT_SQL
                )
            except asyncpg.UniqueViolationError:
                if check_all:
                    raise
                raise _Raced from None
            if written < sum(call.expected for call in live_calls) and not check_all:
                raise _Raced
        returned = committed  # only once COMMIT went through
    finally:
        txn.finish(returned)
    if len(live_calls) == 1 and written < live_calls[0].expected:
        # the checked run met a row inserted concurrently without the lock: not stored
        call = live_calls[0]
        call.outcome.duplicates = len(call.points) - written
        call.expected = written
    for call in live_calls:
        call.outcome.accepted = call.expected
        call.outcome.late = call.late
        call.outcome.anomalies.sort(key=lambda a: (a["timestamp"], a["detector_id"]))
        _count(call.outcome)
    return txn.pages_written


async def ingest(
    pool: asyncpg.Pool,
    account: str,
    points: Sequence[PointLike],
    *,
    batch: bool,
    unknown_is_404: bool = False,
    on_pages: Callable[[], None] | None = None,
) -> IngestOutcome:
    """Store and score points of any of the account's detectors (all or nothing).

    An unknown detector is a 404 for one point, a 422 naming the index in a
    batch (or a 404 naming it with `unknown_is_404`, for the Hasura action).
    """
    for check_all in (False, True):
        call = _Call(points=points)
        try:
            pages = await _run(
                pool,
                account,
                [call],
                batch=batch,
                unknown_is_404=unknown_is_404,
                check_all=check_all,
                isolate_errors=False,
            )
        except _Raced:
            # a point collided with a row stored without the detector lock (a Hasura
            # insert): everything was rolled back; redo with every point looked up first
            continue
        call.outcome.pages = pages
        if pages and on_pages is not None:
            on_pages()
        return call.outcome
    raise AssertionError("unreachable: the checked run never races")


async def ingest_singles(
    pool: asyncpg.Pool,
    account: str,
    points: Sequence[PointLike],
    *,
    on_pages: Callable[[], None] | None = None,
) -> list[IngestOutcome | Exception]:
    """Single-point requests of one account in one transaction (group commit).

    Each point is its own call, processed in order exactly as if the requests had
    come one by one; each gets its own outcome or error (an unknown or disabled
    detector fails only its request). If the transaction fails as a whole, every
    request is run again on its own, so one cannot take the others down.
    """
    calls = [_Call(points=[p]) for p in points]
    try:
        pages = await _run(
            pool,
            account,
            calls,
            batch=False,
            unknown_is_404=False,
            check_all=False,
            isolate_errors=True,
        )
    except Exception as exc:  # including _Raced: each request alone, with its own error
        if not isinstance(exc, _Raced | ApiError):
            log.warning("grouped ingest failed, retrying one by one: %r", exc)
        results: list[IngestOutcome | Exception] = []
        for p in points:
            try:
                results.append(await ingest(pool, account, [p], batch=False, on_pages=on_pages))
            except Exception as error:
                results.append(error)
        return results
    if pages and on_pages is not None:
        on_pages()
    return [call.error if call.error is not None else call.outcome for call in calls]


@dataclass(frozen=True)
class _Pending:
    """A stored, not-yet-scored point (event path)."""

    detector_id: str
    timestamp: datetime
    value: float


async def score_pending(
    pool: asyncpg.Pool,
    account: str,
    detector_id: str,
    *,
    on_pages: Callable[[], None] | None = None,
) -> IngestOutcome | None:
    """Score every not-yet-scored point of one detector, in timestamp order.

    For the event trigger: repeated and out-of-order deliveries find nothing
    left to do. Returns None when the detector is disabled (its points wait).
    """
    replica = await replica_allowed(pool)
    txn = _Txn(account, modelcache.for_pool(pool))
    returned = None
    try:
        async with scoped_transaction(pool, account) as conn:
            await txn.lock(conn, [detector_id], replica)
            live = txn.live.get(detector_id)
            if live is None:
                raise NotFound(f"no detector {detector_id!r}", details={"detector_id": detector_id})
            if not live.row["enabled"]:
                return None
            pending = await conn.fetch(
                "SELECT id, ts, value FROM np_anomaly_data_points "
                "WHERE source_account_id = $1 AND detector_id = $2 AND score IS NULL "
                "ORDER BY ts",
                account,
                detector_id,
            )
            rows = []
            skipped: list[int] = []
            for r in pending:
                if not math.isfinite(r["value"]):
                    skipped.append(r["id"])  # NaN/Infinity inserted directly: 0, not learned
                    continue
                rows.append(r)
            if skipped:
                await conn.execute(
                    "UPDATE np_anomaly_data_points SET score = 0, "
                    'context = \'{"explanation": "not a finite number: not scored"}\' '
                    "WHERE source_account_id = $1 AND id = ANY($2::bigint[])",
                    account,
                    skipped,
                )
            if not rows:
                return IngestOutcome()
            call = _Call(
                points=[_Pending(detector_id, r["ts"], r["value"]) for r in rows],
                keys=[r["id"] for r in rows],
            )
            if live.last_ts is None:
                late = np.zeros(len(rows), dtype=bool)
            else:
                late = call.epoch <= live.last_ts.timestamp()
            live.scored = True
            await txn.load_models(conn)
            txn.score(call, detector_id, list(range(len(rows))), call.epoch, late)
            written, committed = await txn.write(conn, UPDATE_SQL)
        returned = committed  # only once COMMIT went through
    finally:
        txn.finish(returned)
    outcome = call.outcome
    outcome.accepted = written
    outcome.late = int(late.sum())
    outcome.pages = txn.pages_written
    outcome.anomalies.sort(key=lambda a: (a["timestamp"], a["detector_id"]))
    _count(outcome, duplicates=False)
    if txn.pages_written and on_pages is not None:
        on_pages()
    return outcome


def _unknown_detector(
    points: Sequence[PointLike], detector_id: str, *, batch: bool, unknown_is_404: bool
) -> None:
    if not batch:
        raise NotFound(f"no detector {detector_id!r}", details={"detector_id": detector_id})
    i = _locate(points, detector_id)
    if unknown_is_404:
        raise NotFound(
            f"points.{i}.detector_id: no detector {detector_id!r}",
            details={"detector_id": detector_id, "index": i},
        )
    raise ValidationFailed(
        f"points.{i}.detector_id: no detector {detector_id!r}",
        details=[
            {
                "loc": ["body", "points", str(i), "detector_id"],
                "message": f"no detector {detector_id!r}",
                "type": "unknown_detector",
            }
        ],
    )


def _count(outcome: IngestOutcome, *, duplicates: bool = True) -> None:
    if outcome.accepted:
        POINTS_INGESTED.labels("accepted").inc(outcome.accepted)
    if outcome.late:
        POINTS_INGESTED.labels("late").inc(outcome.late)
    if duplicates and outcome.duplicates:
        POINTS_INGESTED.labels("duplicate").inc(outcome.duplicates)
    for anomaly in outcome.anomalies:
        ANOMALIES.labels(anomaly["severity"]).inc()
