"""EWMA z-score: a point far from the exponentially weighted mean."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import Detector, DetectorParams, PointScore, Scores
from .explain import fmt, learning_sentence
from .recursions import adaptive_alphas, ewm_mean_var
from .scores import empty_scores, fill_z, safe_scale
from .state import FLOAT, INT, Codec


class EwmaParams(DetectorParams):
    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="smoothing factor; memory is about 2/alpha points"
    )
    warmup: int = Field(30, ge=2, description="points learned before scoring")
    min_std: float = Field(
        0.0, ge=0.0, description="smallest standard deviation assumed (units of the value)"
    )


class EwmaDetector(Detector):
    """Exponentially weighted moving average z-score.

    Catches spikes and dips: a point far from the recent weighted mean in units
    of the recent weighted standard deviation. Adapts to slow changes, so it
    does not keep alarming after a level shift.

    The mean and variance start as equal-weight running statistics and turn
    into an EWMA once ``1 / count`` drops below ``alpha`` (no start-up bias).
    Each point is scored against the model *before* it, then learned.

    Parameters
    ----------
    alpha : float, default 0.05
        Smoothing factor in (0, 1); larger forgets faster.
    warmup : int, default 30
        Points learned before scores can be non-zero (at least 2).
    min_std : float, default 0.0
        Floor on the standard deviation, for series that are usually constant.

    Score: ``1 - P(|Z| >= |z|)`` with ``z = (value - mean) / std``, on the
    shared scale (:mod:`.scores`: the normal tail up to 0.9999 at |z| 3.89,
    then ranked, strictly rising with |z| and never 1); band: ``mean ± 2.58
    std`` (where the score reaches 0.99).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> values = rng.normal(50.0, 3.0, 300)
    >>> values[250] = 80.0
    >>> detector = EwmaDetector(alpha=0.05)
    >>> scores = detector.score(np.arange(300) * 60.0, values)
    >>> bool(scores.score[250] > 0.999), bool(np.median(scores.score[30:250]) < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "ewma"
    Params: ClassVar[type[DetectorParams]] = EwmaParams
    params: EwmaParams
    state_fields: ClassVar[dict[str, Codec]] = {"count": INT, "mean": FLOAT, "var": FLOAT}

    def reset(self) -> None:
        self._count = 0
        self._mean = 0.0
        self._var = 0.0

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n, detail=True)
        if n == 0:
            return result
        if learn:
            alphas = adaptive_alphas(self.params.alpha, self._count, n)
            mean_before, var_before, mean_after, var_after = ewm_mean_var(
                values, alphas, self._mean, self._var
            )
        else:
            mean_before = np.full(n, self._mean)
            var_before = np.full(n, self._var)
        std = safe_scale(np.sqrt(var_before), mean_before, self.params.min_std)
        warm = self._seen_before(n, learn) >= self.warmup
        z = (values - mean_before) / std
        fill_z(result, warm, z[warm], mean_before[warm], std[warm])
        if learn:
            self._count += n
            self._mean = float(mean_after[-1])
            self._var = float(var_after[-1])
        return result

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("EWMA", self.warmup)
        z = point.detail
        side = "above" if z >= 0 else "below"
        return (
            f"EWMA: value {fmt(value)} is {abs(z):.1f} standard deviations {side} the "
            f"expected {fmt(point.expected)} (band {fmt(point.lower)}–{fmt(point.upper)})."
        )
