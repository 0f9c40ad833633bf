"""The one-point threshold policy gives exactly what the vectorised one gives."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.anomaly.detectors.base import Scores
from services.anomaly.policy_one import apply_one
from services.anomaly.thresholds import Thresholds, ThresholdState

stamps = st.floats(1.7e9, 1.8e9, allow_nan=False)
maybe_stamp = st.none() | stamps
policies = st.builds(
    lambda score, gap, direction, consecutive, cooldown, bounds: Thresholds(
        score=score,
        critical=min(1.0, score + gap),
        direction=direction,
        consecutive=consecutive,
        cooldown_seconds=cooldown,
        upper=bounds[1] if bounds else None,
        lower=bounds[0] if bounds else None,
    ),
    st.sampled_from([0.5, 0.9, 0.99]),
    st.sampled_from([0.0, 0.005, 0.5]),
    st.sampled_from(["both", "up", "down"]),
    st.integers(1, 3),
    st.sampled_from([0.0, 60.0, 3600.0]),
    st.none() | st.sampled_from([(0.0, 10.0), (-5.0, 5.0)]),
)
states = st.builds(
    lambda run, last, start, previous: ThresholdState(
        run=run, last_anomaly=last, episode_start=start, previous_anomalous=previous
    ).model_dump(),
    st.integers(0, 4),
    maybe_stamp,
    maybe_stamp,
    st.booleans(),
) | st.just({})


@settings(max_examples=400, deadline=None)
@given(
    policies,
    states,
    stamps,
    st.floats(-20, 20, allow_nan=False),
    st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 0.995, 0.9999, 1.0]),
    st.none() | st.floats(-20, 20, allow_nan=False),
    st.booleans(),
)
def test_one_point_equals_the_vectorised_policy(
    policy: Thresholds,
    state: dict[str, Any],
    timestamp: float,
    value: float,
    score: float,
    expected: float | None,
    learn: bool,
) -> None:
    e = math.nan if expected is None else expected
    scores = Scores(
        score=np.array([score]),
        expected=np.array([e]),
        lower=np.array([math.nan]),
        upper=np.array([math.nan]),
    )
    ts, vs = np.array([timestamp]), np.array([value])
    reference = policy.apply(ts, vs, scores, state, learn=learn)
    is_anomaly, severity, start, after = apply_one(
        policy, timestamp, value, score, e, state, learn=learn
    )
    assert is_anomaly == bool(reference.is_anomaly[0])
    assert severity == reference.severity[0]
    assert (math.isnan(start) and math.isnan(reference.episode_start[0])) or (
        start == reference.episode_start[0]
    )
    if learn:
        assert after == reference.state.model_dump()
        assert bool(reference.opens_episode(ts)[0]) == (is_anomaly and start == timestamp)
