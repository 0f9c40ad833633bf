"""Scoring one detector's points: the detector's scores judged by the threshold policy.

Pure: plain arrays and dicts in, a ``ScoredSeries`` out, no I/O. The ingest
pipeline calls ``score_points`` with a live detector (one point or many: the
same function); backtests call ``score_series`` with a fresh one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.anomaly import detectors
from services.anomaly.detectors.base import Detector, Scores, warmup_learning
from services.anomaly.ingest import statecodec
from services.anomaly.thresholds import Thresholds, apply_one, parse_thresholds


def build_detector(algorithm: str, params: dict[str, Any]) -> Detector:
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
    page: np.ndarray  # anomalies that page (the first eligible one of each episode)
    resolve: np.ndarray  # start of the paged episode ending at the point (NaN: none)
    explanation: list[str | None]
    details: list[float | None]
    policy_state: dict[str, Any]
    n_seen: int
    warmup: int
    learning: bool  # the detector's own verdict after these points (status `learning`)


@dataclass
class _Judged:
    """The threshold policy's verdict on one pass of points."""

    is_anomaly: np.ndarray
    anomalies: list[int]  # where is_anomaly, in order
    severity: list[str | None]
    episode_start: np.ndarray  # NaN unless anomalous and learned
    opens: np.ndarray
    page: np.ndarray
    resolve: np.ndarray
    state: dict[str, Any]


# Up to this many learned points, the policy is judged point by point (``apply_one``,
# plain Python: a few microseconds a point) rather than vectorised (some 45 microseconds
# a call whatever its size): the same verdicts (tests/anomaly/test_thresholds.py), and
# the usual case of remote write, where a request holds a point or two of each series.
FOLD_POINTS = 16


def _judge(
    policy: Thresholds,
    epoch: np.ndarray,
    values: np.ndarray,
    scores: Scores,
    state: dict[str, Any],
    learn: bool,
    now: float | None,
    quiet_until: float | None = None,
) -> _Judged:
    """The policy on a pass: its one-point entry folded over a few points (one late
    point, or up to ``FOLD_POINTS`` learned ones), the vectorised one else."""
    n = epoch.shape[0]
    if n == 1 or (learn and n <= FOLD_POINTS):
        is_anomaly = np.zeros(n, dtype=bool)
        opens = np.zeros(n, dtype=bool)
        page = np.zeros(n, dtype=bool)
        episode_start = np.empty(n)
        resolve = np.empty(n)
        severity: list[str | None] = [None] * n
        anomalies: list[int] = []
        learning = [False] * n if scores.learning is None else scores.learning.tolist()
        score, expected = scores.score.tolist(), scores.expected.tolist()
        after = state
        for i, (t, v) in enumerate(zip(epoch.tolist(), values.tolist(), strict=True)):
            verdict = apply_one(
                policy,
                t,
                v,
                score[i],
                expected[i],
                after,
                learn=learn,
                learning=bool(learning[i]),
                now=now,
                quiet_until=quiet_until,
            )
            after = verdict.state
            episode_start[i] = start = verdict.episode_start
            resolve[i] = verdict.resolve
            if verdict.is_anomaly:
                anomalies.append(i)
                is_anomaly[i] = True
                severity[i] = verdict.severity
                opens[i] = learn and start == t
                page[i] = verdict.page
        return _Judged(
            is_anomaly=is_anomaly,
            anomalies=anomalies,
            severity=severity,
            episode_start=episode_start,
            opens=opens,
            page=page,
            resolve=resolve,
            state=after if learn else state,
        )
    outcome = policy.apply(
        epoch, values, scores, state, learn=learn, now=now, quiet_until=quiet_until
    )
    return _Judged(
        is_anomaly=outcome.is_anomaly,
        anomalies=outcome.is_anomaly.nonzero()[0].tolist(),
        severity=outcome.severity.tolist(),
        episode_start=outcome.episode_start,
        opens=outcome.opens_episode(epoch) if learn else np.zeros(epoch.shape[0], dtype=bool),
        page=outcome.page,
        resolve=outcome.resolve,
        state=outcome.state.model_dump() if learn else state,
    )


def _scored(detector: Detector, ts: np.ndarray, vs: np.ndarray, learn: bool) -> Scores:
    """The detector's scores with ``learning`` filled in (a detector overriding ``score``
    without saying which points it scored while learning gets the warm-up rule)."""
    seen_before = detector.n_seen
    scores = detector.score(ts, vs, learn=learn)
    if scores.learning is None:
        learning = warmup_learning(seen_before, ts.shape[0], learn, detector.warmup)
        scores = replace(scores, learning=learning)
    return scores


def score_points(
    detector: Detector,
    policy: Thresholds,
    policy_state: dict[str, Any],
    epoch: np.ndarray,
    values: np.ndarray,
    late: np.ndarray,
    *,
    now: float | None = None,
    quiet_until: float | None = None,
) -> ScoredSeries:
    """Score one detector's points with a live detector (which learns the non-late ones).

    Late points are scored first, against the detector as it is and without
    learning; the others are then learned in order, in one ``score`` call. The
    threshold policy turns scores into anomalies and pages; only learned points
    move its state (runs, episodes), and a late anomaly never opens, joins or
    ends an episode nor pages. ``now`` (epoch seconds) is when the points are
    scored, for the page age limit (None: no limit, as in backtests); points at or
    before ``quiet_until`` (a backfill) page nobody.
    """
    n = values.shape[0]
    n_late = np.count_nonzero(late)  # rather than .any()/.all(): no Python-level wrapper
    if n_late == 0:
        passes: list[tuple[bool, np.ndarray | None]] = [(True, None)]
    elif n_late == n:
        passes = [(False, None)]
    else:
        passes = [(False, np.flatnonzero(late)), (True, np.flatnonzero(~late))]
    whole = passes[0][1] is None  # one pass over every point: its arrays are the result
    score = expected = lower = upper = is_anomaly = opens = page = resolve = np.empty(0)
    if not whole:
        score, expected = np.zeros(n), np.full(n, np.nan)
        lower, upper = np.full(n, np.nan), np.full(n, np.nan)
        is_anomaly, opens = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        page, resolve = np.zeros(n, dtype=bool), np.full(n, np.nan)
    severity: list[str | None] = [None] * n
    episode: list[float | None] = [None] * n
    explanation: list[str | None] = [None] * n
    details: list[float | None] = [None] * n
    for learn, idx in passes:
        ts = epoch if idx is None else epoch[idx]
        vs = values if idx is None else values[idx]
        scores = _scored(detector, ts, vs, learn)
        judged = _judge(policy, ts, vs, scores, policy_state, learn, now, quiet_until)
        policy_state = judged.state
        if whole:
            score = np.asarray(scores.score, dtype=np.float64)
            expected = np.asarray(scores.expected, dtype=np.float64)
            lower = np.asarray(scores.lower, dtype=np.float64)
            upper = np.asarray(scores.upper, dtype=np.float64)
            is_anomaly, opens = judged.is_anomaly, judged.opens
            page, resolve = judged.page, judged.resolve
        else:
            score[idx], expected[idx] = scores.score, scores.expected
            lower[idx], upper[idx] = scores.lower, scores.upper
            is_anomaly[idx], opens[idx] = judged.is_anomaly, judged.opens
            page[idx], resolve[idx] = judged.page, judged.resolve
        for k in judged.anomalies:
            i = k if idx is None else int(idx[k])
            point = scores.point(k)
            start = float(judged.episode_start[k])
            severity[i] = judged.severity[k]
            episode[i] = None if math.isnan(start) else start
            explanation[i] = detector.explain(float(values[i]), point)
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
        page=page,
        resolve=resolve,
        explanation=explanation,
        details=details,
        policy_state=policy_state,
        n_seen=int(detector.n_seen),
        warmup=int(detector.warmup),
        learning=bool(detector.is_learning),
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
    or None for a fresh detector (what backtests use).
    """
    detector = build_detector(algorithm, params)
    state = state or {}
    if state.get("model") is not None:
        detector.set_state(statecodec.unpack(state["model"]))
    return score_points(
        detector, parse_thresholds(thresholds), state.get("policy") or {}, epoch, values, late
    )
