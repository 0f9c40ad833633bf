"""The scoring pipeline shared by REST ingest, the Hasura action and the event trigger.

One short tenant transaction per call:

1. lock the detectors concerned (``SELECT ... ORDER BY id FOR UPDATE``: several
   replicas and connections serialise per detector, never deadlock);
2. find the points already stored (duplicates) in one statement;
3. score each detector's points vectorised, in timestamp order: points newer
   than its latest are learned, older ones are *late* (scored against the
   current model with ``learn=False``);
4. write everything with ONE statement: the points (multi-row ``INSERT ...
   SELECT FROM unnest(...) ON CONFLICT DO NOTHING``, or an ``UPDATE`` of the
   not-yet-scored rows for the event trigger), the detectors' new state and
   counters, and the outbox rows of new anomaly episodes to page.

The pure part (``score_series``) does no I/O and is what backtests use.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import numpy as np

from services.anomaly import detectors, statecodec
from services.anomaly.detectors import base as detector_base
from services.anomaly.thresholds import parse_thresholds
from services.common.db import tenant_transaction
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.metrics import ANOMALIES, POINTS_INGESTED

SOURCE = "nself-anomaly"


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
    state: dict[str, Any]
    n_seen: int
    warmup: int


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

    Late points are scored first, against the model as loaded and without
    learning; the others are then learned in order. The threshold policy
    (``thresholds.Thresholds``) turns scores into anomalies; only learned
    points move its state (runs, episodes), and a late anomaly never opens or
    joins an episode.
    """
    model = build_model(algorithm, params)
    state = state or {}
    if state.get("model") is not None:
        model.set_state(statecodec.unpack(state["model"]))
    policy_state = state.get("policy") or {}
    n = values.shape[0]
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

    policy = parse_thresholds(thresholds)
    for learn, mask in ((False, late), (True, ~late)):
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        scores = model.score(epoch[idx], values[idx], learn=learn)
        outcome = policy.apply(epoch[idx], values[idx], scores, policy_state, learn=learn)
        if learn:
            policy_state = outcome.state.model_dump()
            opens[idx] = outcome.opens_episode(epoch[idx])
        score[idx] = scores.score
        expected[idx] = scores.expected
        lower[idx] = scores.lower
        upper[idx] = scores.upper
        is_anomaly[idx] = outcome.is_anomaly
        for k in np.flatnonzero(outcome.is_anomaly).tolist():
            i = int(idx[k])
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
        state={"model": statecodec.pack(model.get_state()), "policy": policy_state},
        n_seen=int(model.n_seen),
        warmup=int(model.warmup),
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


_LOCK_SQL = """
SELECT id, name, algorithm, params, thresholds, state, enabled, escalation_policy_id, last_ts
  FROM np_anomaly_detectors
 WHERE source_account_id = $1 AND id = ANY($2::text[])
 ORDER BY id
   FOR UPDATE
"""
# The same, also switching the transaction to session_replication_role = replica: the
# points written next reference detectors locked here, so their per-row foreign-key
# check is skipped, and Hasura's event trigger does not fire for points scored already.
_LOCK_REPLICA_SQL = """
SELECT id, name, algorithm, params, thresholds, state, enabled, escalation_policy_id, last_ts,
       set_config('session_replication_role', 'replica', true) AS replica
  FROM np_anomaly_detectors
 WHERE source_account_id = $1 AND id = ANY($2::text[])
 ORDER BY id
   FOR UPDATE
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
     ORDER BY s.n
    ON CONFLICT (source_account_id, detector_id, ts) DO NOTHING
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

_WRITE_TAIL = """,
counted AS (
    SELECT detector_id, count(*) AS accepted,
           count(*) FILTER (WHERE is_anomaly) AS anomalies,
           count(*) FILTER (WHERE late) AS late
      FROM ins GROUP BY detector_id
),
upd AS (
    UPDATE np_anomaly_detectors d SET
        state = CASE WHEN s.n_seen IS NULL THEN d.state ELSE s.state END,
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
      FROM unnest($13::text[], $14::jsonb[], $15::bigint[], $16::int[], $17::int[],
                  $18::int[], $19::timestamptz[], $20::float8[], $21::float8[],
                  $22::timestamptz[])
           AS s(id, state, n_seen, warmup, submitted, duplicates, last_ts, last_value,
                last_score, last_anomaly_at)
      LEFT JOIN counted c ON c.detector_id = s.id
     WHERE d.source_account_id = $1 AND d.id = s.id
),
pages AS (
    INSERT INTO np_anomaly_page_outbox
        (source_account_id, detector_id, point_id, policy_id, dedup_key, episode_start,
         severity, summary, details)
    SELECT $1, g.detector_id, ins.id, g.policy_id, g.dedup_key, g.episode_start, g.severity,
           g.summary, g.details
      FROM unnest($23::text[], $24::timestamptz[], $25::text[], $26::text[],
                  $27::timestamptz[], $28::text[], $29::text[], $30::jsonb[])
           AS g(detector_id, ts, policy_id, dedup_key, episode_start, severity, summary,
                details)
      JOIN ins ON ins.detector_id = g.detector_id AND ins.ts = g.ts
    ON CONFLICT (source_account_id, dedup_key) DO NOTHING
    RETURNING id
)
SELECT ins.id, ins.detector_id, ins.ts, ins.ingested_at,
       (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM pages) AS paged
  FROM ins WHERE ins.is_anomaly
UNION ALL
SELECT NULL, NULL, NULL, NULL, (SELECT count(*) FROM ins), (SELECT count(*) FROM pages)
"""

INSERT_SQL = "WITH" + _INSERT_CTE + _WRITE_TAIL
UPDATE_SQL = "WITH" + _UPDATE_CTE + _WRITE_TAIL


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dedup_key(account: str, detector_id: str, episode_start: datetime) -> str:
    return f"anomaly:{account}:{detector_id}:{iso(episode_start)}"


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class _Work:
    """One detector's part of a call: its locked row and its points to score."""

    row: asyncpg.Record
    ts: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # event path: existing rows
    submitted: int = 0
    duplicates: int = 0


class _Writer:
    """Accumulates the column arrays of the one write statement."""

    def __init__(self) -> None:
        self.points: list[list[Any]] = [[] for _ in range(11)]
        self.detectors: list[list[Any]] = [[] for _ in range(10)]
        self.pages: list[list[Any]] = [[] for _ in range(8)]
        self.anomaly_rows: dict[tuple[str, datetime], dict[str, Any]] = {}

    def add(self, account: str, work: _Work, key_col: Sequence[Any], late: np.ndarray) -> None:
        row = work.row
        n = len(work.ts)
        scored: ScoredSeries | None = None
        if n:
            epoch = np.fromiter((t.timestamp() for t in work.ts), dtype=np.float64, count=n)
            values = np.asarray(work.values, dtype=np.float64)
            scored = score_series(
                algorithm=row["algorithm"],
                params=row["params"],
                thresholds=row["thresholds"],
                state=row["state"],
                epoch=epoch,
                values=values,
                late=late,
            )
            self._add_points(account, row, work, key_col, epoch, values, late, scored)
        learned = np.flatnonzero(~late) if scored is not None else np.empty(0, dtype=np.int64)
        d = self.detectors
        d[0].append(row["id"])
        # None: nothing scored, the stored state and counts stay
        d[1].append(scored.state if scored is not None else None)
        d[2].append(scored.n_seen if scored is not None else None)
        d[3].append(scored.warmup if scored is not None else None)
        d[4].append(work.submitted)
        d[5].append(work.duplicates)
        if learned.size and scored is not None:
            last = int(learned[-1])
            d[6].append(work.ts[last])
            d[7].append(work.values[last])
            d[8].append(float(scored.score[last]))
        else:
            d[6].append(None)
            d[7].append(None)
            d[8].append(None)
        anomalous = np.flatnonzero(scored.is_anomaly) if scored is not None else []
        d[9].append(max((work.ts[int(i)] for i in anomalous), default=None))

    def _add_points(
        self,
        account: str,
        row: asyncpg.Record,
        work: _Work,
        key_col: Sequence[Any],
        epoch: np.ndarray,
        values: np.ndarray,
        late: np.ndarray,
        s: ScoredSeries,
    ) -> None:
        p = self.points
        offset = len(p[0])  # positions are 1-based over the whole call
        p[0].extend(key_col)
        p[1].extend(np.rint(epoch * 1e6).astype(np.int64).tolist())
        p[2].extend(work.values)
        p[3].extend(s.score.tolist())
        p[4].extend(s.expected.tolist())
        p[5].extend(s.lower.tolist())
        p[6].extend(s.upper.tolist())
        p[7].extend(late.tolist())
        for i in np.flatnonzero(s.is_anomaly).tolist():
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
            ts = work.ts[i]
            self.anomaly_rows[(row["id"], ts)] = {
                "detector_id": row["id"],
                "timestamp": ts.astimezone(UTC),
                "value": work.values[i],
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
            }
            if s.opens_episode[i] and row["escalation_policy_id"] and start is not None:
                self._add_page(account, row, ts, float(values[i]), s, i, _from_epoch(start))

    def _add_page(
        self,
        account: str,
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
        g[3].append(dedup_key(account, row["id"], start))
        g[4].append(start)
        g[5].append(severity)
        g[6].append(f"Anomaly on {row['name']}: value {value:.6g} at {iso(ts)} ({severity})")
        g[7].append(
            {
                "detector_id": row["id"],
                "detector_name": row["name"],
                "account": account,
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

    async def write(self, conn: asyncpg.Connection, account: str, sql: str) -> IngestOutcome:
        rows = await conn.fetch(sql, account, *self.points, *self.detectors, *self.pages)
        outcome = IngestOutcome()
        for r in rows:
            if r["id"] is None:
                outcome.accepted = int(r["inserted"])
                outcome.pages = int(r["paged"])
                continue
            anomaly = self.anomaly_rows.get((r["detector_id"], r["ts"]))
            if anomaly is not None:
                outcome.anomalies.append(
                    {"id": r["id"], **anomaly, "ingested_at": r["ingested_at"]}
                )
        outcome.anomalies.sort(key=lambda a: (a["timestamp"], a["detector_id"]))
        return outcome


def _locate(points: Sequence[PointLike], detector_id: str) -> int:
    return next(i for i, p in enumerate(points) if p.detector_id == detector_id)


async def _lock(
    conn: asyncpg.Connection, account: str, detector_ids: list[str], *, replica: bool
) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(_LOCK_REPLICA_SQL if replica else _LOCK_SQL, account, detector_ids)
    return {r["id"]: r for r in rows}


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
    by_detector: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(points):
        by_detector[p.detector_id].append(i)
    try:
        outcome, late_total = await _ingest_once(
            pool, account, points, by_detector, batch, unknown_is_404, check_all=False
        )
    except _Raced:
        # a point collided with a row stored without the detector lock (a Hasura insert):
        # everything was rolled back; redo with every point checked for duplicates first
        outcome, late_total = await _ingest_once(
            pool, account, points, by_detector, batch, unknown_is_404, check_all=True
        )
    outcome.duplicates = len(points) - outcome.accepted
    outcome.late = late_total
    _count(outcome)
    if outcome.pages and on_pages is not None:
        on_pages()
    return outcome


class _Raced(Exception):
    """The insert met rows the duplicate check did not look for; the call is redone."""


async def _ingest_once(
    pool: asyncpg.Pool,
    account: str,
    points: Sequence[PointLike],
    by_detector: dict[str, list[int]],
    batch: bool,
    unknown_is_404: bool,
    *,
    check_all: bool,
) -> tuple[IngestOutcome, int]:
    detector_ids = sorted(by_detector)
    replica = await replica_allowed(pool)
    async with tenant_transaction(pool, account) as conn:
        locked = await _lock(conn, account, detector_ids, replica=replica)
        for detector_id in detector_ids:
            if detector_id not in locked:
                _unknown_detector(points, detector_id, batch=batch, unknown_is_404=unknown_is_404)
            if not locked[detector_id]["enabled"]:
                i = _locate(points, detector_id)
                raise Conflict(
                    f"detector {detector_id!r} is disabled"
                    + (f" (points.{i}.detector_id)" if batch else ""),
                    details={"detector_id": detector_id, **({"index": i} if batch else {})},
                )
        # Points newer than their detector's latest learned point cannot repeat a point
        # stored through this pipeline (the lock orders them), so the duplicate lookup is
        # only needed for the others; a collision with a row inserted otherwise is caught
        # by ON CONFLICT below and the call redone with the full check.
        last_ts = {d: locked[d]["last_ts"] for d in detector_ids}
        to_check = [
            p
            for p in points
            if check_all
            or (last_ts[p.detector_id] is not None and p.timestamp <= last_ts[p.detector_id])
        ]
        existing: set[tuple[str, datetime]] = set()
        if to_check:
            dup_rows = await conn.fetch(
                _DUPLICATES_SQL,
                account,
                [p.detector_id for p in to_check],
                [p.timestamp for p in to_check],
            )
            existing = {(r["detector_id"], r["ts"]) for r in dup_rows}
        writer = _Writer()
        late_total = 0
        expected = 0
        for detector_id in detector_ids:
            row = locked[detector_id]
            work = _Work(row=row, submitted=len(by_detector[detector_id]))
            order = sorted(by_detector[detector_id], key=lambda i: points[i].timestamp)
            previous: datetime | None = None
            for i in order:
                ts = points[i].timestamp
                if (detector_id, ts) in existing or ts == previous:
                    work.duplicates += 1
                    continue
                previous = ts
                work.ts.append(ts)
                work.values.append(points[i].value)
            work.submitted -= work.duplicates
            expected += work.submitted
            late = _late_mask(work.ts, row["last_ts"])
            late_total += int(late.sum())
            writer.add(account, work, [detector_id] * len(work.ts), late)
        outcome = await writer.write(conn, account, INSERT_SQL)
        if outcome.accepted < expected and not check_all:
            raise _Raced
    return outcome, late_total


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
    async with tenant_transaction(pool, account) as conn:
        locked = await _lock(conn, account, [detector_id], replica=replica)
        if detector_id not in locked:
            raise NotFound(f"no detector {detector_id!r}", details={"detector_id": detector_id})
        row = locked[detector_id]
        if not row["enabled"]:
            return None
        pending = await conn.fetch(
            "SELECT id, ts, value FROM np_anomaly_data_points "
            "WHERE source_account_id = $1 AND detector_id = $2 AND score IS NULL ORDER BY ts",
            account,
            detector_id,
        )
        work = _Work(row=row)
        skipped: list[int] = []
        for r in pending:
            if not math.isfinite(r["value"]):
                skipped.append(r["id"])  # NaN/Infinity inserted directly: scored 0, not learned
                continue
            work.ids.append(r["id"])
            work.ts.append(r["ts"])
            work.values.append(r["value"])
        if skipped:
            await conn.execute(
                "UPDATE np_anomaly_data_points SET score = 0, "
                'context = \'{"explanation": "not a finite number: not scored"}\' '
                "WHERE source_account_id = $1 AND id = ANY($2::bigint[])",
                account,
                skipped,
            )
        if not work.ts:
            return IngestOutcome()
        late = _late_mask(work.ts, row["last_ts"])
        writer = _Writer()
        writer.add(account, work, work.ids, late)
        outcome = await writer.write(conn, account, UPDATE_SQL)
    outcome.late = int(late.sum())
    _count(outcome, duplicates=False)
    if outcome.pages and on_pages is not None:
        on_pages()
    return outcome


def _late_mask(ts: list[datetime], last_ts: datetime | None) -> np.ndarray:
    if last_ts is None:
        return np.zeros(len(ts), dtype=bool)
    return np.fromiter((t <= last_ts for t in ts), dtype=bool, count=len(ts))


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
