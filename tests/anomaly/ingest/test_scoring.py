"""The policy judged point by point on a few learned points (``scoring.FOLD_POINTS``)
gives exactly what the vectorised policy gives on the batch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.anomaly.detectors.base import Scores
from services.anomaly.ingest.scoring import FOLD_POINTS, _judge
from services.anomaly.thresholds import Thresholds
from tests.anomaly.test_thresholds import policies, states


@settings(max_examples=300, deadline=None)
@given(
    policy=policies,
    state=states,
    data=st.data(),
    n=st.integers(1, FOLD_POINTS),
    now=st.none() | st.floats(1.7e9, 1.8e9),
    quiet=st.none() | st.floats(1.7e9, 1.8e9),
)
def test_folded_judgement_equals_the_vectorised_one(
    policy: Thresholds,
    state: dict[str, Any],
    data: st.DataObject,
    n: int,
    now: float | None,
    quiet: float | None,
) -> None:
    gaps = data.draw(st.lists(st.sampled_from([15.0, 60.0, 900.0, 4000.0]), min_size=n, max_size=n))
    epoch = 1.75e9 + np.cumsum(gaps)
    values = np.array(
        data.draw(st.lists(st.sampled_from([-8.0, 0.0, 4.0, 12.0]), min_size=n, max_size=n))
    )
    score = data.draw(
        st.lists(st.sampled_from([0.0, 0.5, 0.99, 0.995, 1.0]), min_size=n, max_size=n)
    )
    expected = data.draw(st.lists(st.sampled_from([2.0, math.nan]), min_size=n, max_size=n))
    learning = data.draw(st.none() | st.lists(st.booleans(), min_size=n, max_size=n))
    scores = Scores(
        score=np.array(score),
        expected=np.array(expected),
        lower=np.full(n, math.nan),
        upper=np.full(n, math.nan),
        learning=None if learning is None else np.array(learning),
    )
    folded = _judge(policy, epoch, values, scores, state, True, now, quiet)
    reference = policy.apply(epoch, values, scores, state, learn=True, now=now, quiet_until=quiet)
    np.testing.assert_array_equal(folded.is_anomaly, reference.is_anomaly)
    assert folded.severity == list(reference.severity)
    np.testing.assert_array_equal(folded.episode_start, reference.episode_start)
    np.testing.assert_array_equal(folded.opens, reference.opens_episode(epoch))
    np.testing.assert_array_equal(folded.page, reference.page)
    np.testing.assert_array_equal(folded.resolve, reference.resolve)
    assert folded.state == reference.state.model_dump()
