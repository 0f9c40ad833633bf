"""The service's view of a detector's threshold policy.

``validate`` normalises a ``thresholds`` object (422 naming the field) and
``evaluate`` turns scores into anomalies, severities and episodes, carrying the
streaming part (consecutive run, current episode) in a JSON state saved with
the detector's model state.

Semantics (SPEC section 4): a point is anomalous when its score reaches
``score`` in the allowed ``direction`` for ``consecutive`` points in a row, or
when it crosses a static ``upper``/``lower`` bound. Severity is ``critical``
from the ``critical`` score up (or beyond a static bound), else ``warning``.
Anomalies form one episode while each comes within ``cooldown_seconds`` of the
previous one, or directly follows it (no normal point in between); the first
anomaly of an episode opens it (and pages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.anomaly.detectors.base import InvalidParams


class Thresholds(BaseModel):
    """A detector's threshold policy (every field optional, defaults shown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: float = Field(0.99, ge=0.0, le=1.0, description="score at which a point is anomalous")
    direction: Literal["both", "up", "down"] = Field(
        "both", description="deviations that count: above, below or both"
    )
    consecutive: int = Field(1, ge=1, le=1000, description="points in a row to raise")
    cooldown_seconds: float = Field(
        0, ge=0, description="anomalies closer than this join the previous episode"
    )
    upper: float | None = Field(None, description="static upper bound (always anomalous above)")
    lower: float | None = Field(None, description="static lower bound (always anomalous below)")
    critical: float = Field(0.999, ge=0.0, le=1.0, description="score from which it is critical")

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.upper is not None and self.lower is not None and self.lower > self.upper:
            raise ValueError("lower must not be above upper")
        return self


def validate(thresholds: dict[str, Any] | None) -> dict[str, Any]:
    """The normalised policy; raises ``InvalidParams(field, message)``."""
    try:
        return model_of(thresholds).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "thresholds"
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InvalidParams(where, message) from None


def model_of(thresholds: dict[str, Any] | None) -> Thresholds:
    return Thresholds(**(thresholds or {}))


@dataclass
class PolicyOutcome:
    is_anomaly: np.ndarray
    severity: list[str | None]
    episode_start: list[float | None]
    opens_episode: np.ndarray
    state: dict[str, Any]


def evaluate(
    thresholds: dict[str, Any] | None,
    state: dict[str, Any] | None,
    *,
    epoch: np.ndarray,
    values: np.ndarray,
    scores: np.ndarray,
    expected: np.ndarray,
    learn: bool,
) -> PolicyOutcome:
    """Anomalies of a batch in time order; only a learning batch moves the state.

    A non-learning (late) batch is judged point by point against the policy
    without the run and episode bookkeeping: a late point is anomalous when it
    passes on its own (or crosses a bound), and never opens an episode.
    """
    policy = model_of(thresholds)
    state = dict(state or {})
    n = scores.shape[0]
    with np.errstate(invalid="ignore"):
        up = ~(values < expected)  # NaN expected: no direction known, both allowed
        down = ~(values > expected)
    if policy.direction == "up":
        direction_ok = up
    elif policy.direction == "down":
        direction_ok = down
    else:
        direction_ok = np.ones(n, dtype=bool)
    passes = (scores >= policy.score) & direction_ok
    crossed = np.zeros(n, dtype=bool)
    if policy.upper is not None:
        crossed |= values > policy.upper
    if policy.lower is not None:
        crossed |= values < policy.lower

    run_before = int(state.get("run", 0)) if learn else 0
    if policy.consecutive > 1 and learn:
        # length of the run of passing points ending at each point (carrying the stored run)
        positions = np.arange(n)
        last_fail = np.maximum.accumulate(np.where(passes, -1, positions))
        run = np.where(passes, positions - last_fail, 0)
        run = np.where(passes & (last_fail < 0), run_before + positions + 1, run)
        hit = run >= policy.consecutive
    else:
        run = passes.astype(np.int64)
        hit = passes if policy.consecutive == 1 else np.zeros(n, dtype=bool)
    is_anomaly = hit | crossed
    severity: list[str | None] = [None] * n
    episode_start: list[float | None] = [None] * n
    opens = np.zeros(n, dtype=bool)
    critical = (scores >= policy.critical) | crossed
    last_anomaly = state.get("last_anomaly") if learn else None
    current_start = state.get("episode_start") if learn else None
    previous_anomalous = bool(state.get("previous_anomalous", False)) if learn else False
    anomalous_idx = np.flatnonzero(is_anomaly)
    for i in anomalous_idx.tolist():
        severity[i] = "critical" if critical[i] else "warning"
        if not learn:
            continue
        t = float(epoch[i])
        follows = previous_anomalous if i == 0 else bool(is_anomaly[i - 1])
        joins = current_start is not None and (
            follows or (last_anomaly is not None and t - last_anomaly <= policy.cooldown_seconds)
        )
        if not joins:
            current_start = t
            opens[i] = True
        episode_start[i] = current_start
        last_anomaly = t
    if learn and n:
        state = {
            "run": int(run[-1]) if passes[-1] else 0,
            "last_anomaly": last_anomaly,
            "episode_start": current_start,
            "previous_anomalous": bool(is_anomaly[-1]),
        }
    return PolicyOutcome(is_anomaly, severity, episode_start, opens, state)
