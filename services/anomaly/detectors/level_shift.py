"""Two-window level shift: the recent median differs from the one before it."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import DetectorParams, PointScore
from .explain import fmt, learning_sentence
from .robust import robust_sigma, sorted_quantile
from .scores import Z_BAND, safe_scale
from .window import Band, WindowDetector

# variance of a sample median is about (pi / 2) sigma^2 / n for normal data
_MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2.0)


class LevelShiftParams(DetectorParams):
    window: int = Field(10, ge=3, description="recent points (including the current one)")
    reference_window: int = Field(60, ge=5, description="points before the recent window")
    min_std: float = Field(0.0, ge=0.0, description="smallest standard deviation assumed")


class LevelShiftDetector(WindowDetector):
    """Two adjacent windows compared by their medians.

    Catches a step change of the level that persists for at least half of
    ``window`` points, while ignoring isolated spikes (a median does not move
    for one point). The median of the latest ``window`` points (the current one
    included) is compared with the median of the ``reference_window`` points
    before them, in units of the standard error of that difference
    (robust std of the reference window ``* sqrt(pi/2 (1/window +
    1/reference_window))``).

    The score stays high while the step sits between the two windows, i.e. for
    up to ``window + reference_window`` points after the change, then falls as
    the reference window fills with the new level.

    Parameters
    ----------
    window : int, default 10
        Recent points, the current one included (at least 3).
    reference_window : int, default 60
        Points before the recent window (at least 5).
    min_std : float, default 0.0
        Floor on the reference window's robust standard deviation.

    Score: ``1 - P(|Z| >= |z|)`` on the median difference, on the shared
    scale (the normal tail up to 0.9999, then ranked: a larger step scores
    higher, never 1); ``expected`` is the
    reference median and the band bounds the *recent median* (the level), not
    single values; ``detail`` is the recent median. Warm-up:
    ``window + reference_window - 1`` points.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> values = np.concatenate([rng.normal(20, 1, 200), rng.normal(22, 1, 100)])
    >>> values[100] = 40.0  # a spike is not a shift
    >>> scores = LevelShiftDetector().score(np.arange(300.0), values)
    >>> bool(scores.score[200:210].max() > 0.999), bool(scores.score[100] < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "level_shift"
    Params: ClassVar[type[DetectorParams]] = LevelShiftParams
    params: LevelShiftParams

    @property
    def history_length(self) -> int:
        return self.params.window + self.params.reference_window - 1

    def _score_windows(self, windows: np.ndarray) -> Band:
        reference = self.params.reference_window
        before = np.sort(windows[:, :reference], axis=1)
        recent = np.sort(windows[:, reference:], axis=1)
        level = sorted_quantile(before, 0.5)
        recent_level = sorted_quantile(recent, 0.5)
        sigma = safe_scale(robust_sigma(before, level), level, self.params.min_std)
        std_error = (
            sigma * _MEDIAN_SE_FACTOR * math.sqrt(1.0 / self.params.window + 1.0 / reference)
        )
        z = (recent_level - level) / std_error
        return Band(z, level, std_error, detail=recent_level)

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("Level shift", self.warmup)
        recent, before = point.detail, point.expected
        half_band = (point.upper - point.lower) / 2.0
        std_errors = abs(recent - before) / half_band * Z_BAND if half_band > 0 else 0.0
        side = "above" if recent >= before else "below"
        return (
            f"Level shift: the median of the last {self.params.window} points ({fmt(recent)}) "
            f"is {std_errors:.1f} standard errors {side} the median of the "
            f"{self.params.reference_window} points before ({fmt(before)}); "
            f"latest value {fmt(value)}."
        )
