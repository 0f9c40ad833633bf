"""``Thresholds.apply`` for a batch of one point, in plain Python.

A single-point ingest judges one score; the vectorised policy
(``thresholds.Thresholds.apply``) spends more time setting up its arrays than
the judgement takes. This is the same rules for n = 1, giving exactly what
``apply`` gives (``tests/anomaly/service/test_policy_one.py`` checks it against
``apply`` over random states, settings and scores): whether the point is an
anomaly, its severity, its episode start (NaN unless anomalous and learned)
and the policy state after it, as the dict ``ThresholdState.model_dump()``
would give.
"""

from __future__ import annotations

import math
from typing import Any

from services.anomaly.thresholds import CRITICAL, WARNING, Thresholds, ThresholdState


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
    """(is_anomaly, severity, episode_start, state after) of one point."""
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


_FIELDS = frozenset(ThresholdState.model_fields)
