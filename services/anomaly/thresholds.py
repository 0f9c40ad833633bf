"""Threshold policy: from any detector's scores to anomalies, severities, episodes.

Kept apart from the detectors (like river's ``ThresholdFilter``): a detector
says how surprising each point is; this policy decides what to raise. It is
pure and vectorised, and carries its streaming part (the current run of
passing points and the current episode) in a small JSON state.

Rules, in order (``Thresholds`` holds the configuration):

* **direction**: a point *passes* when its score is at least ``score`` and it
  deviates the allowed way: ``up`` means value above ``expected``, ``down``
  below, ``both`` either. Points without an ``expected`` (flatline, gap, or a
  detector still learning) pass in any direction.
* **consecutive**: a passing point is anomalous once it ends a run of
  ``consecutive`` passing points in a row (the run carries across batches).
  The earlier points of the run are not flagged after the fact.
* **static bounds**: a value above ``upper`` or below ``lower`` is anomalous
  whatever its score, direction or run, and always ``critical``.
* **severity**: ``critical`` from the ``critical`` score up (or beyond a
  bound), else ``warning``; ``None`` for normal points.
* **cooldown groups, never suppresses**: every anomalous point stays flagged
  with its own severity. An anomaly joins the current episode when it directly
  follows an anomalous point or comes within ``cooldown_seconds`` of the
  previous anomaly; otherwise it opens a new episode. ``episode_start`` (the
  timestamp of the episode's first anomaly) goes into the paging dedup key
  ``anomaly:<account>:<detector>:<episode start>``, so an episode pages once
  however many points it flags.
* **late points** (``learn=False``): judged alone against ``score``,
  direction and bounds (a run needs neighbours, so with ``consecutive > 1``
  only a bound makes them anomalous); they never open or join an episode
  (``episode_start`` is NaN) and the state does not move.

Two implementations of the same rules sit side by side: the vectorised
:meth:`Thresholds.apply` for batches, and :func:`apply_one`, the same rules
for one point in plain Python (a single-point ingest would spend more time
setting up ``apply``'s arrays than the judgement takes).
``tests/anomaly/test_thresholds.py`` checks they agree over random states,
settings and scores.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.anomaly.detectors.base import InvalidParams, Scores, params_error

WARNING = "warning"
CRITICAL = "critical"


class ThresholdState(BaseModel):
    """Streaming part of the policy (JSON: ``model_dump()`` / ``model_validate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: int = Field(0, ge=0, description="passing points in a row ending at the last point")
    last_anomaly: float | None = Field(None, description="timestamp of the latest anomaly")
    episode_start: float | None = Field(None, description="first anomaly of the current episode")
    previous_anomalous: bool = Field(False, description="whether the last point was anomalous")


class ThresholdResult(NamedTuple):
    """Per point: anomalous?, severity (None/'warning'/'critical'), episode start
    (NaN unless anomalous and learned); and the state after the batch."""

    is_anomaly: np.ndarray
    severity: np.ndarray
    episode_start: np.ndarray
    state: ThresholdState

    def opens_episode(self, timestamps: Any) -> np.ndarray:
        """Anomalies that open an episode (the ones that page)."""
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        return self.is_anomaly & (self.episode_start == ts)


class Thresholds(BaseModel):
    """A detector's threshold policy; every field optional (defaults shown)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    score: float = Field(0.99, ge=0.0, le=1.0, description="score from which a point passes")
    direction: Literal["both", "up", "down"] = Field(
        "both", description="deviations that count: above expected, below, or both"
    )
    consecutive: int = Field(1, ge=1, le=10_000, description="passing points in a row to raise")
    cooldown_seconds: float = Field(
        0.0, ge=0.0, description="anomalies this close to the previous one join its episode"
    )
    upper: float | None = Field(None, description="static bound: anomalous above, always")
    lower: float | None = Field(None, description="static bound: anomalous below, always")
    critical: float = Field(
        0.999, ge=0.0, le=1.0, description="score from which an anomaly is critical"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Thresholds:
        if self.upper is not None and self.lower is not None and self.lower > self.upper:
            raise InvalidParams(
                "lower", f"must not be above upper ({self.lower:g} > {self.upper:g})"
            )
        if self.critical < self.score:
            raise InvalidParams(
                "critical", f"must not be below score ({self.critical:g} < {self.score:g})"
            )
        return self

    def apply(
        self,
        timestamps: Any,
        values: Any,
        scores: Scores,
        state: ThresholdState | dict[str, Any] | None = None,
        *,
        learn: bool = True,
    ) -> ThresholdResult:
        """Judge a batch (in time order when ``learn``); pure, state in and out."""
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        vs = np.asarray(values, dtype=np.float64).reshape(-1)
        n = vs.shape[0]
        if ts.shape[0] != n or len(scores) != n:
            raise ValueError("timestamps, values and scores differ in length")
        before = _as_state(state)

        with np.errstate(invalid="ignore"):
            no_expectation = np.isnan(scores.expected)
            if self.direction == "up":
                direction_ok = (vs > scores.expected) | no_expectation
            elif self.direction == "down":
                direction_ok = (vs < scores.expected) | no_expectation
            else:
                direction_ok = np.ones(n, dtype=bool)
        passes = (scores.score >= self.score) & direction_ok
        crossed = np.zeros(n, dtype=bool)
        if self.upper is not None:
            crossed |= vs > self.upper
        if self.lower is not None:
            crossed |= vs < self.lower

        run = _runs(passes, before.run if learn else 0)
        hit = passes & (run >= self.consecutive)
        is_anomaly = hit | crossed
        severity = np.full(n, None, dtype=object)
        severity[is_anomaly] = WARNING
        severity[crossed | (hit & (scores.score >= self.critical))] = CRITICAL

        episode_start = np.full(n, np.nan)
        if not learn or n == 0:
            return ThresholdResult(is_anomaly, severity, episode_start, before)

        anomalies = np.flatnonzero(is_anomaly)
        last_anomaly, current_start = before.last_anomaly, before.episode_start
        if anomalies.size:
            times = ts[anomalies]
            previous_time = np.concatenate(
                ([np.nan if last_anomaly is None else last_anomaly], times[:-1])
            )
            follows = np.where(
                anomalies > 0, is_anomaly[np.maximum(anomalies - 1, 0)], before.previous_anomalous
            )
            with np.errstate(invalid="ignore"):
                close = (times - previous_time) <= self.cooldown_seconds
            joins = follows | close
            if current_start is None:
                joins[0] = False  # nothing to join yet
            opener = np.where(joins, -1, np.arange(anomalies.size))
            latest_opener = np.maximum.accumulate(opener)
            carried = np.nan if current_start is None else current_start
            starts = np.where(latest_opener >= 0, times[np.maximum(latest_opener, 0)], carried)
            episode_start[anomalies] = starts
            last_anomaly, current_start = float(times[-1]), float(starts[-1])
        after = ThresholdState(
            run=int(run[-1]),
            last_anomaly=last_anomaly,
            episode_start=current_start,
            previous_anomalous=bool(is_anomaly[-1]),
        )
        return ThresholdResult(is_anomaly, severity, episode_start, after)


def _as_state(state: ThresholdState | dict[str, Any] | None) -> ThresholdState:
    if state is None:
        return ThresholdState()
    if isinstance(state, ThresholdState):
        return state
    return ThresholdState.model_validate(state)


def _runs(passes: np.ndarray, carried: int) -> np.ndarray:
    """Passing points in a row ending at each point, continuing ``carried``."""
    index = np.arange(passes.shape[0])
    last_fail = np.maximum.accumulate(np.where(passes, -1, index))
    return np.where(passes, np.where(last_fail < 0, carried + index + 1, index - last_fail), 0)


_FIELDS = frozenset(ThresholdState.model_fields)


def apply_one(
    policy: Thresholds,
    timestamp: float,
    value: float,
    score: float,
    expected: float,
    state: dict[str, Any] | None,
    *,
    learn: bool,
) -> tuple[bool, str | None, float, dict[str, Any]]:
    """:meth:`Thresholds.apply` for a batch of one point, in plain Python.

    Gives exactly what ``apply`` gives for that point.

    Parameters
    ----------
    policy : Thresholds
        The detector's policy.
    timestamp, value, score, expected : float
        The point and its detector score (``expected`` NaN when the detector
        has none).
    state : dict or None
        Policy state as ``ThresholdState.model_dump()`` gives it (None: fresh).
    learn : bool
        False for a late point (judged alone, state unchanged).

    Returns
    -------
    tuple
        ``(is_anomaly, severity, episode_start, state after)``: the severity is
        None, ``'warning'`` or ``'critical'``; the episode start is NaN unless
        the point is anomalous and learned; the state is the dict
        ``ThresholdState.model_dump()`` would give.
    """
    if state is None or state.keys() != _FIELDS:
        state = ThresholdState.model_validate(state or {}).model_dump()
    if math.isnan(expected) or policy.direction == "both":
        direction_ok = True
    elif policy.direction == "up":
        direction_ok = value > expected
    else:
        direction_ok = value < expected
    passes = score >= policy.score and direction_ok
    crossed = (policy.upper is not None and value > policy.upper) or (
        policy.lower is not None and value < policy.lower
    )
    run = (state["run"] if learn else 0) + 1 if passes else 0
    hit = passes and run >= policy.consecutive
    is_anomaly = hit or crossed
    severity = None
    if is_anomaly:
        severity = CRITICAL if crossed or (hit and score >= policy.critical) else WARNING
    if not learn:
        return is_anomaly, severity, math.nan, state
    last_anomaly, current_start = state["last_anomaly"], state["episode_start"]
    episode_start = math.nan
    if is_anomaly:
        close = last_anomaly is not None and timestamp - last_anomaly <= policy.cooldown_seconds
        joins = (state["previous_anomalous"] or close) and current_start is not None
        episode_start = current_start if joins else timestamp
        last_anomaly, current_start = timestamp, episode_start
    after = {
        "run": run,
        "last_anomaly": last_anomaly,
        "episode_start": current_start,
        "previous_anomalous": is_anomaly,
    }
    return is_anomaly, severity, episode_start, after


def parse_thresholds(raw: dict[str, Any] | None) -> Thresholds:
    """Validated policy from a ``thresholds`` object (None: all defaults).

    Raises ``InvalidParams(field, message)`` naming the offending field.
    """
    if raw is not None and (
        not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw)
    ):
        raise InvalidParams("thresholds", "must be an object of setting names to values")
    try:
        return Thresholds(**(raw or {}))
    except ValidationError as exc:
        raise params_error(exc) from None
