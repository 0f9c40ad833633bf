"""Trend drift: the latest points rise or fall steadily (Mann-Kendall test)."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import DetectorParams, PointScore, Scores
from .explain import fmt, learning_sentence
from .robust import robust_sigma, row_median
from .scores import empty_scores, fill_z, safe_scale
from .state import INT, Codec
from .window import WindowDetector, windows_ending_at

# successive differences of independent points have sqrt(2) times their spread
_SQRT_HALF = math.sqrt(0.5)


class DriftParams(DetectorParams):
    window: int = Field(
        60, ge=10, description="latest points tested for a trend (the normal law needs 10)"
    )
    min_std: float = Field(0.0, ge=0.0, description="smallest standard deviation of the band")


class DriftDetector(WindowDetector):
    """Mann-Kendall trend test over a sliding window.

    Catches slow drifts that point detectors adapt to without noticing: a
    memory leak, a filling disk, a sensor losing calibration. Over the latest
    ``window`` points (the current one included) it counts concordant minus
    discordant pairs, ``S = sum_{i<j} sign(x_j - x_i)``, which is
    distribution-free and ignores the size of single outliers. ``S`` is kept up
    to date incrementally (one new and one expired point per step, exact
    integers), so the batch path is vectorised and equals the streaming one
    exactly.

    Series with strong seasonality rise and fall every cycle; use ``seasonal``
    or ``holt_winters`` for those. A step inside the window also reads as a
    trend. Ties are not corrected for, which makes the test conservative on
    discrete values.

    Parameters
    ----------
    window : int, default 60
        Points tested (at least 10). Warm-up is ``window - 1`` points.
    min_std : float, default 0.0
        Floor on the band's standard deviation.

    Score: ``1 - P(|Z| >= |z|)`` (the shared map, ranked beyond 0.9999) with
    ``z = (|S| - c) / sd(S)``, ``var(S) = n(n-1)(2n+5)/18`` and ``c`` the
    continuity correction: 1 for a trendless window, shrinking towards 0 as
    the trend grows (``1 / (1 + ln(1 + size))``, size = least-squares rise
    over the window in units of the robust noise of the steps). ``S`` stops
    growing once every pair is in order; ``c`` keeps a steeper trend ranking
    higher, and moves ``z`` by less than one step of ``S``. ``expected`` is
    the mean of the previous ``window - 1`` points and the band their mean ±
    2.58 std (what a trendless series stays in); ``detail`` is the
    least-squares slope per point over the window.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(4)
    >>> values = rng.normal(0.0, 1.0, 400)
    >>> values[250:] += 0.1 * np.arange(150)  # a leak starts at point 250
    >>> scores = DriftDetector().score(np.arange(400.0), values)
    >>> bool(scores.score[300] > 0.999), bool(np.median(scores.score[60:250]) < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "drift"
    Params: ClassVar[type[DetectorParams]] = DriftParams
    params: DriftParams
    state_fields: ClassVar[dict[str, Codec]] = {**WindowDetector.state_fields, "kendall": INT}

    def reset(self) -> None:
        super().reset()
        self._kendall = 0  # S over the latest `window` points
        width = self.params.window
        self._kendall_sd = math.sqrt(width * (width - 1) * (2 * width + 5) / 18.0)
        # least-squares slope of a window: dot with centred positions / their sum of squares
        positions = np.arange(width, dtype=np.float64) - (width - 1) / 2.0
        self._slope_weights = positions / float(np.dot(positions, positions))

    @property
    def history_length(self) -> int:
        return self.params.window

    @property
    def warmup(self) -> int:
        return self.params.window - 1

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n, detail=True)
        if n == 0:
            return result
        width = self.params.window
        # pad a short history with NaN: pairs with a missing point count 0
        history = np.concatenate((np.full(width - self._tail.shape[0], np.nan), self._tail))
        windows, _ = windows_ending_at(history, values, width + 1, learn=learn)
        expired, middle, current = windows[:, 0], windows[:, 1:-1], windows[:, -1]
        # sign() is NaN for a padded point; only the first batch is ever padded
        total = np.nansum if self._tail.shape[0] < width else np.sum
        with np.errstate(invalid="ignore"):
            gained = total(np.sign(current[:, None] - middle), axis=1)
            lost = total(np.sign(middle - expired[:, None]), axis=1)
        change = (gained - lost).astype(np.int64)
        kendall = self._kendall + (np.cumsum(change) if learn else change)
        warm = self._seen_before(n, learn) >= self.warmup
        if np.any(warm):
            rows = np.flatnonzero(warm)
            tested = kendall[rows].astype(np.float64)
            previous = middle[rows]
            level = previous.mean(axis=1)
            spread = safe_scale(previous.std(axis=1), level, self.params.min_std)
            window = windows[rows, 1:]
            slope = window @ self._slope_weights
            correction = self._continuity_correction(window, slope, level)
            z = np.sign(tested) * np.maximum(np.abs(tested) - correction, 0.0) / self._kendall_sd
            fill_z(result, rows, z, level, spread, detail=slope)
        if learn:
            self._kendall = int(kendall[-1])
            self._learn_tail(values)
        return result

    def _continuity_correction(
        self, window: np.ndarray, slope: np.ndarray, level: np.ndarray
    ) -> np.ndarray:
        """The continuity correction of ``S``, in (0, 1], smaller for a larger trend.

        ``S`` counts signs, so it stops growing once every pair is in order:
        a leak of 100 noise units per window and one of 10,000 would tie. The
        correction, 1 for no trend, shrinks with the size of the trend in noise
        units (least-squares rise over the window / the robust noise of the
        steps): ``1 / (1 + ln(1 + size))``. It changes ``z`` by less than one
        step of ``S`` (so the rank test still decides), and ranks equal ``S``
        by the size of the trend.
        """
        steps = np.diff(window, axis=1)
        noise = robust_sigma(steps, row_median(steps)) * _SQRT_HALF
        noise = safe_scale(noise, level, self.params.min_std)
        size = np.abs(slope) * (self.params.window - 1) / noise
        return 1.0 / (1.0 + np.log1p(size))

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("Drift", self.warmup)
        slope = point.detail
        trend = "rising" if slope >= 0 else "falling"
        return (
            f"Drift: the last {self.params.window} points are {trend} by about "
            f"{fmt(abs(slope))} per point (trend score {point.score:.3f}); latest value "
            f"{fmt(value)} against a trendless band {fmt(point.lower)}–{fmt(point.upper)}."
        )
