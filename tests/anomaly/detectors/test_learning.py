"""Learning, as every registered detector says it: `Scores.learning` per point and
`is_learning` now (the detector API's status; no critical severity and no page while
learning). The default rule, the warm-up, is filled in by `Detector.score` for every
algorithm that has no rule of its own."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from services.anomaly.detectors import ALGORITHMS, Scores, create
from services.anomaly.detectors.base import Detector, warmup_learning
from services.anomaly.detectors.ewma import EwmaParams
from services.anomaly.ingest.scoring import score_points
from services.anomaly.thresholds import parse_thresholds

from .helpers import CONTRACT_PARAMS, contract_series

NAMES = sorted(ALGORITHMS)
# algorithms with a learning rule of their own (time-based: the first seasonal cycle)
OWN_RULE = {name for name, cls in ALGORITHMS.items() if "is_learning" in vars(cls)}


def fresh(name: str) -> Detector:
    params: dict[str, Any] = CONTRACT_PARAMS.get(name, {})
    return create(name, params)


@pytest.mark.parametrize("name", NAMES)
def test_every_algorithm_says_which_points_it_scored_while_learning(name: str) -> None:
    ts, vs = contract_series()
    detector = fresh(name)
    assert detector.is_learning == (detector.warmup > 0 or name in OWN_RULE)
    flags: list[bool] = []
    for lo in range(0, ts.shape[0], 300):  # in batches, as ingests come
        scores = detector.score(ts[lo : lo + 300], vs[lo : lo + 300])
        assert scores.learning is not None and scores.learning.dtype == bool
        assert scores.learning.shape == scores.score.shape
        flags += scores.learning.tolist()
        # learned once, learned for good: once a point is not learning, it never is again
        if not flags[-1]:
            assert not detector.is_learning
    assert flags == sorted(flags, reverse=True)
    late = detector.score(ts[:3], vs[:3], learn=False)
    assert late.learning is not None and late.learning.shape == (3,)
    if name not in OWN_RULE:  # the warm-up: a late point is judged by the model as it is
        assert late.learning.tolist() == [detector.is_learning] * 3
    one = fresh(name).score_one(float(ts[0]), float(vs[0]))
    assert one.learning == fresh(name).is_learning


@pytest.mark.parametrize("name", sorted(set(NAMES) - OWN_RULE))
def test_the_default_rule_is_the_warm_up_whatever_the_batches(name: str) -> None:
    ts, vs = contract_series()
    detector = fresh(name)
    warmup = detector.warmup
    cuts = sorted({0, 1, max(warmup - 1, 0), warmup, warmup + 7, ts.shape[0]})
    flags: list[bool] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        flags += detector.score(ts[lo:hi], vs[lo:hi]).learning.tolist()  # type: ignore[union-attr]
        assert detector.is_learning == (hi < warmup)
    assert flags == [i < warmup for i in range(ts.shape[0])]


def test_the_warm_up_rule() -> None:
    assert warmup_learning(0, 5, True, 3).tolist() == [True, True, True, False, False]
    assert warmup_learning(2, 3, True, 3).tolist() == [True, False, False]
    assert warmup_learning(2, 2, False, 3).tolist() == [True, True]
    assert warmup_learning(3, 2, False, 3).tolist() == [False, False]


class _Quiet(Detector):
    """A detector overriding `score` without saying which points were learning."""

    name = "quiet"
    Params = EwmaParams

    def __init__(self) -> None:
        self.inner = create("ewma", {"warmup": 3})
        super().__init__()

    def reset(self) -> None:
        self._count = 0

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        raise AssertionError("not used")

    def score(self, timestamps: Any, values: Any, *, learn: bool = True) -> Scores:
        scores = self.inner.score(timestamps, values, learn=learn)
        if learn:
            self._count = self.inner.n_seen
        return replace(scores, learning=None)

    @property
    def warmup(self) -> int:
        return 3


def test_the_ingest_falls_back_on_the_warm_up_rule() -> None:
    """A detector whose `score` says nothing still has its first points judged learning:
    never critical, never a page."""
    detector = _Quiet()
    ts = np.arange(5) * 60.0
    values = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    scored = score_points(
        detector,
        parse_thresholds({"score": 0.0, "critical": 0.0}),
        {},
        ts,
        values,
        np.zeros(5, dtype=bool),
    )
    assert scored.is_anomaly.all()  # every point passes a zero threshold
    assert scored.severity == ["warning"] * 3 + ["critical"] * 2
    assert scored.page.tolist() == [False, False, False, True, False]
    assert scored.learning is False
