"""Threshold policy: from any detector's scores to anomalies, severities, episodes, pages.

Kept apart from the detectors (like river's ``ThresholdFilter``): a detector
says how surprising each point is; this policy decides what to raise and what
pages. It is pure and vectorised, and carries its streaming part (the current
run of passing points and the current episode) in a small JSON state.

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
  bound), else ``warning``; ``None`` for normal points. A point the detector
  scored while still *learning* (``Scores.learning``) is never ``critical``
  unless it crosses a bound.
* **cooldown groups, never suppresses**: every anomalous point stays flagged
  with its own severity. An anomaly joins the current episode when it directly
  follows an anomalous point or comes within ``cooldown_seconds`` of the
  previous anomaly; otherwise it opens a new episode. ``episode_start`` (the
  timestamp of the episode's first anomaly) goes into the paging dedup key
  ``anomaly:<account>:<detector>:<episode start>``, so an episode pages once
  however many points it flags.
* **pages**: an episode pages at its first *eligible* anomaly (``page``):
  one not scored while learning (or crossing a bound), and not older than
  ``page_max_age_seconds`` at ``now``, the instant it is scored (the caller's
  clock; ``now=None``, as in backtests, ignores age). So a backfill of old
  history pages nobody, nor does a detector's first seasonal cycle, while an
  incident still going on when fresh points arrive pages once they do.
* **episode end**: an episode ends at the first point that comes more than
  ``cooldown_seconds`` after its last anomaly without joining it (a normal
  point, or an anomaly opening the next episode). ``resolve`` marks that point
  with the start of the episode when the episode paged and ``auto_resolve``
  is on: its on-call alert is to be resolved. When no point comes at all,
  :func:`episode_end` says when the caller's clock ends it (the paging worker).
* **late points** (``learn=False``): judged alone against ``score``,
  direction and bounds (a run needs neighbours, so with ``consecutive > 1``
  only a bound makes them anomalous); they never open, join or end an episode,
  never page (``episode_start`` is NaN) and the state does not move.

Two implementations of the same rules sit side by side: the vectorised
:meth:`Thresholds.apply` for batches, and :func:`apply_one`, the same rules
for one point in plain Python (a single-point ingest would spend more time
setting up ``apply``'s arrays than the judgement takes).
``tests/anomaly/test_thresholds.py`` checks they agree with each other and
with a plain loop over random states, settings and scores.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from services.anomaly.detectors.base import InvalidParams, Scores, params_error

WARNING = "warning"
CRITICAL = "critical"

#: Default episode cooldown: 30 minutes. Anomalies closer than this to the previous one
#: are one incident (one page), and an episode ends, its alert resolved, after this long
#: without an anomaly. Long enough to hold together a flapping metric (a few points over,
#: a few under, for minutes at a time) and to span two or three points of 5- to 15-minute
#: data, short enough that an incident half an hour after recovery pages again and an
#: alert stays open no longer than half an hour after the last anomaly.
DEFAULT_COOLDOWN_SECONDS = 1800.0
#: Default page age limit: points older than an hour when scored page nobody (backfills).
DEFAULT_PAGE_MAX_AGE_SECONDS = 3600.0
_YEAR = 366 * 86400.0


class ThresholdState(BaseModel):
    """Streaming part of the policy (JSON: ``model_dump()`` / ``model_validate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: int = Field(0, ge=0, description="passing points in a row ending at the last point")
    last_anomaly: float | None = Field(None, description="timestamp of the latest anomaly")
    episode_start: float | None = Field(
        None, description="first anomaly of the current episode (None: no episode open)"
    )
    previous_anomalous: bool = Field(False, description="whether the last point was anomalous")
    paged: bool = Field(False, description="whether the current episode has paged")
    last_seen: float | None = Field(None, description="timestamp of the latest learned point")
    interval: float | None = Field(
        None, description="seconds between the two latest learned points"
    )


class ThresholdResult(NamedTuple):
    """Per point: anomalous?, severity (None/'warning'/'critical'), episode start
    (NaN unless anomalous and learned); the state after the batch; whether the point
    pages (the first eligible anomaly of its episode); and the start of the paged
    episode that ends at the point, whose alert is to be resolved (NaN: none)."""

    is_anomaly: np.ndarray
    severity: np.ndarray
    episode_start: np.ndarray
    state: ThresholdState
    page: np.ndarray
    resolve: np.ndarray

    def opens_episode(self, timestamps: Any) -> np.ndarray:
        """Anomalies that open an episode."""
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        return self.is_anomaly & (self.episode_start == ts)


class Verdict(NamedTuple):
    """:func:`apply_one`'s answer for one point (see :class:`ThresholdResult`)."""

    is_anomaly: bool
    severity: str | None
    episode_start: float
    state: dict[str, Any]
    page: bool
    resolve: float


class Thresholds(BaseModel):
    """A detector's threshold policy; every field optional (defaults shown)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    score: float = Field(0.99, ge=0.0, le=1.0, description="score from which a point passes")
    direction: Literal["both", "up", "down"] = Field(
        "both", description="deviations that count: above expected, below, or both"
    )
    consecutive: int = Field(1, ge=1, le=10_000, description="passing points in a row to raise")
    cooldown_seconds: float = Field(
        DEFAULT_COOLDOWN_SECONDS,
        ge=0.0,
        le=_YEAR,
        description=(
            "anomalies this close to the previous one join its episode (one page); an "
            "episode ends after this long without an anomaly"
        ),
    )
    upper: float | None = Field(None, description="static bound: anomalous above, always")
    lower: float | None = Field(None, description="static bound: anomalous below, always")
    critical: float = Field(
        0.999, ge=0.0, le=1.0, description="score from which an anomaly is critical"
    )
    page_max_age_seconds: float | None = Field(
        DEFAULT_PAGE_MAX_AGE_SECONDS,
        gt=0.0,
        le=_YEAR,
        description=(
            "a point older than this when scored pages nobody (still stored and listed); "
            "null: no limit"
        ),
    )
    auto_resolve: StrictBool = Field(
        True, description="resolve the on-call alert of an episode when the episode ends"
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
        now: float | None = None,
        quiet_until: float | None = None,
    ) -> ThresholdResult:
        """Judge a batch (in time order when ``learn``); pure, state in and out.

        ``scores.learning`` marks the points scored while the detector was learning
        (None: none were); ``now`` (epoch seconds) is when the batch is scored, for the
        page age limit (None: no age limit); points at or before ``quiet_until`` (epoch
        seconds: a backfill) page nobody, like points past the age limit.
        """
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        vs = np.asarray(values, dtype=np.float64).reshape(-1)
        n = vs.shape[0]
        if ts.shape[0] != n or len(scores) != n:
            raise ValueError("timestamps, values and scores differ in length")
        before = _as_state(state)
        if scores.learning is None:
            learning = np.zeros(n, dtype=bool)
        else:
            learning = np.asarray(scores.learning, dtype=bool).reshape(-1)

        passes = scores.score >= self.score
        if self.direction != "both":
            with np.errstate(invalid="ignore"):
                no_expectation = np.isnan(scores.expected)
                if self.direction == "up":
                    passes &= (vs > scores.expected) | no_expectation
                else:
                    passes &= (vs < scores.expected) | no_expectation
        crossed = np.zeros(n, dtype=bool)
        if self.upper is not None:
            crossed |= vs > self.upper
        if self.lower is not None:
            crossed |= vs < self.lower

        run = _runs(passes, before.run if learn else 0)
        hit = passes & (run >= self.consecutive)
        is_anomaly = hit | crossed
        severity = np.empty(n, dtype=object)  # None throughout (np.full's, cheaper)
        severity[is_anomaly] = WARNING
        severity[crossed | (hit & ~learning & (scores.score >= self.critical))] = CRITICAL

        episode_start, resolve = np.empty(n), np.empty(n)  # NaN (np.full's, cheaper)
        episode_start.fill(np.nan)
        resolve.fill(np.nan)
        page = np.zeros(n, dtype=bool)
        if not learn or n == 0:
            return ThresholdResult(is_anomaly, severity, episode_start, before, page, resolve)

        eligible = crossed | ~learning
        if now is not None and self.page_max_age_seconds is not None:
            eligible &= (now - ts) <= self.page_max_age_seconds
        if quiet_until is not None:
            eligible &= ts > quiet_until
        episodes = _Episodes(self, ts, before)
        anomalies = is_anomaly.nonzero()[0]  # np.flatnonzero's, without its wrapper
        if anomalies.size:
            episodes.judge(anomalies, is_anomaly, eligible[anomalies], episode_start, page)
        final_start, final_paged = episodes.end(resolve)
        last_anomaly = float(ts[anomalies[-1]]) if anomalies.size else before.last_anomaly
        interval = before.interval
        if n > 1:
            interval = float(ts[-1] - ts[-2])
        elif before.last_seen is not None:
            interval = float(ts[0] - before.last_seen)
        after = ThresholdState(
            run=int(run[-1]),
            last_anomaly=last_anomaly,
            episode_start=final_start,
            previous_anomalous=bool(is_anomaly[-1]),
            paged=final_paged,
            last_seen=float(ts[-1]),
            interval=interval,
        )
        return ThresholdResult(is_anomaly, severity, episode_start, after, page, resolve)


class _Episodes:
    """The episode bookkeeping of one learned batch (``Thresholds.apply``)."""

    def __init__(self, policy: Thresholds, ts: np.ndarray, before: ThresholdState) -> None:
        self.policy = policy
        self.ts = ts
        self.before = before
        # the batch's episodes, in order: start, time of the last anomaly, paged
        self.starts = self.lasts = np.empty(0)
        self.paged = np.zeros(0, dtype=bool)
        self.carried_continues = False

    def judge(
        self,
        anomalies: np.ndarray,
        is_anomaly: np.ndarray,
        eligible: np.ndarray,
        episode_start: np.ndarray,
        page: np.ndarray,
    ) -> None:
        """Episode of each anomaly, and the anomalies that page."""
        before, ts = self.before, self.ts
        current_start = before.episode_start
        times = ts[anomalies]
        previous_time = np.concatenate(
            ([np.nan if before.last_anomaly is None else before.last_anomaly], times[:-1])
        )
        follows = np.where(
            anomalies > 0, is_anomaly[np.maximum(anomalies - 1, 0)], before.previous_anomalous
        )
        with np.errstate(invalid="ignore"):
            close = (times - previous_time) <= self.policy.cooldown_seconds
        joins = follows | close
        if current_start is None:
            joins[0] = False  # nothing to join yet
        self.carried_continues = bool(joins[0])
        opener = np.where(joins, -1, np.arange(anomalies.size))
        latest_opener = np.maximum.accumulate(opener)
        carried = np.nan if current_start is None else current_start
        starts = np.where(latest_opener >= 0, times[np.maximum(latest_opener, 0)], carried)
        episode_start[anomalies] = starts

        # episode of each anomaly: 0 the carried one (when it continues), then 1, 2, ...
        group = np.cumsum(~joins)
        paged_before = self.carried_continues and before.paged
        candidates = np.flatnonzero(eligible)
        if candidates.size:
            g = group[candidates]
            first = np.ones(candidates.size, dtype=bool)
            first[1:] = g[1:] != g[:-1]
            if paged_before:
                first &= g != 0
            page[anomalies[candidates[first]]] = True
            candidates = candidates[first]
        paged_group = np.zeros(int(group[-1]) + 1, dtype=bool)
        paged_group[group[candidates]] = True
        paged_group[0] |= paged_before
        last = np.flatnonzero(np.append(group[1:] != group[:-1], True))
        self.starts, self.lasts, self.paged = starts[last], times[last], paged_group[group[last]]

    def end(self, resolve: np.ndarray) -> tuple[float | None, bool]:
        """Mark where episodes end (``resolve``); the open episode after the batch."""
        before, ts = self.before, self.ts
        starts, lasts, paged = self.starts, self.lasts, self.paged
        if before.episode_start is not None and not self.carried_continues:
            carried_last = np.nan if before.last_anomaly is None else before.last_anomaly
            starts = np.concatenate(([before.episode_start], starts))
            lasts = np.concatenate(([carried_last], lasts))
            paged = np.concatenate(([before.paged], paged))
        if not starts.size:
            return before.episode_start, before.paged
        with np.errstate(invalid="ignore"):
            at = np.searchsorted(ts, lasts + self.policy.cooldown_seconds, side="right")
        ended = ~np.isnan(lasts) & (at < ts.shape[0])  # a last anomaly unknown: never ends
        if self.policy.auto_resolve:
            resolved = ended & paged
            resolve[at[resolved]] = starts[resolved]
        if ended[-1]:
            return None, False
        return float(starts[-1]), bool(paged[-1])


def _as_state(state: ThresholdState | dict[str, Any] | None) -> ThresholdState:
    if state is None:
        return ThresholdState()
    if isinstance(state, ThresholdState):
        return state
    return ThresholdState.model_validate(state)


def _runs(passes: np.ndarray, carried: int) -> np.ndarray:
    """Passing points in a row ending at each point, continuing ``carried``: the distance
    to the latest failing point (``carried + 1`` before the batch if none; 0 at one)."""
    index = np.arange(passes.shape[0])
    return index - np.maximum.accumulate(np.where(passes, -1 - carried, index))


def episode_end(policy: Thresholds, state: ThresholdState | dict[str, Any] | None) -> float | None:
    """When the open episode ends if no point comes (epoch seconds), for the paging
    worker; None when there is nothing to resolve then (no episode, it has not paged,
    or ``auto_resolve`` is off).

    The cooldown after the last anomaly, or twice the series' latest interval if that
    is longer: a series reporting every hour is not quiet half an hour after a point.
    """
    s = _as_state(state)
    if s.episode_start is None or s.last_anomaly is None or not s.paged:
        return None
    if not policy.auto_resolve:
        return None
    wait = policy.cooldown_seconds
    if s.interval is not None:
        wait = max(wait, 2.0 * s.interval)
    return s.last_anomaly + wait


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
    learning: bool = False,
    now: float | None = None,
    quiet_until: float | None = None,
) -> Verdict:
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
    learning : bool
        Whether the detector was still learning when it scored the point.
    now : float or None
        When the point is scored (epoch seconds), for ``page_max_age_seconds``.
    quiet_until : float or None
        A point at or before it (epoch seconds: a backfill) pages nobody.

    Returns
    -------
    Verdict
        ``(is_anomaly, severity, episode_start, state, page, resolve)``: the
        severity is None, ``'warning'`` or ``'critical'``; the episode start is
        NaN unless the point is anomalous and learned; the state is the dict
        ``ThresholdState.model_dump()`` would give; ``page`` whether the point
        pages; ``resolve`` the start of the paged episode ending at the point
        (NaN: none).
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
        critical = crossed or (hit and not learning and score >= policy.critical)
        severity = CRITICAL if critical else WARNING
    if not learn:
        return Verdict(is_anomaly, severity, math.nan, state, False, math.nan)
    last_anomaly, current_start = state["last_anomaly"], state["episode_start"]
    previous, paged = state["previous_anomalous"], state["paged"]
    cooldown = policy.cooldown_seconds
    resolve = math.nan
    if (
        current_start is not None
        and last_anomaly is not None
        and timestamp - last_anomaly > cooldown
        and not (is_anomaly and previous)
    ):  # the episode ends here
        if paged and policy.auto_resolve:
            resolve = current_start
        current_start, paged = None, False
    episode_start = math.nan
    page = False
    if is_anomaly:
        close = last_anomaly is not None and timestamp - last_anomaly <= cooldown
        if not ((previous or close) and current_start is not None):
            current_start, paged = timestamp, False
        episode_start = current_start
        last_anomaly = timestamp
        if not paged and (crossed or not learning):
            max_age = policy.page_max_age_seconds
            fresh = now is None or max_age is None or now - timestamp <= max_age
            if fresh and (quiet_until is None or timestamp > quiet_until):
                page = paged = True
    last_seen = state["last_seen"]
    after = {
        "run": run,
        "last_anomaly": last_anomaly,
        "episode_start": current_start,
        "previous_anomalous": is_anomaly,
        "paged": paged,
        "last_seen": timestamp,
        "interval": state["interval"] if last_seen is None else timestamp - last_seen,
    }
    return Verdict(is_anomaly, severity, episode_start, after, page, resolve)


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
