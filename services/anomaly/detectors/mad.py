"""Rolling median / MAD: a point far from the median of the latest points."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import DetectorParams, PointScore
from .explain import fmt, learning_sentence
from .robust import robust_sigma, sorted_quantile
from .scores import safe_scale
from .window import Band, WindowDetector


class MadParams(DetectorParams):
    window: int = Field(100, ge=3, description="past points the median and MAD are taken over")
    min_std: float = Field(0.0, ge=0.0, description="smallest robust standard deviation assumed")


class MadDetector(WindowDetector):
    """Rolling median and median absolute deviation (robust z-score).

    Catches spikes and dips like the EWMA z-score, but the median and MAD are
    not dragged by the outliers themselves, so a burst of spikes or a noisy
    neighbour does not mask the next one. Each point is compared with the
    ``window`` points before it.

    The robust standard deviation is ``1.4826 * MAD``; when more than half the
    window is one value (MAD = 0, common for sparse counts) it falls back to
    wider quantiles of the absolute deviations (75 %, 90 %), then to the
    standard deviation, so the usual small departures from such a floor do not
    look extreme.

    Parameters
    ----------
    window : int, default 100
        Past points used (at least 3). Also the warm-up.
    min_std : float, default 0.0
        Floor on the robust standard deviation (units of the value).

    Score: ``1 - P(|Z| >= |z|)`` with ``z = (value - median) / robust std``,
    on the shared scale (the normal tail up to 0.9999, then ranked, strictly
    rising with |z| and never 1); band: ``median ± 2.58 robust std``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> values = rng.normal(10.0, 1.0, 200)
    >>> values[150] = 16.0
    >>> scores = MadDetector(window=30).score(np.arange(200.0), values)
    >>> bool(scores.score[150] > 0.999), float(scores.score[0])
    (True, 0.0)
    """

    name: ClassVar[str] = "mad"
    Params: ClassVar[type[DetectorParams]] = MadParams
    params: MadParams

    @property
    def history_length(self) -> int:
        return self.params.window

    def _score_windows(self, windows: np.ndarray) -> Band:
        past, current = windows[:, :-1], windows[:, -1]
        ordered = np.sort(past, axis=1)
        median = sorted_quantile(ordered, 0.5)
        sigma = safe_scale(robust_sigma(ordered, median), median, self.params.min_std)
        return Band((current - median) / sigma, median, sigma)

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("Rolling median", self.warmup)
        z = point.detail
        side = "above" if z >= 0 else "below"
        return (
            f"Rolling median: value {fmt(value)} is {abs(z):.1f} robust standard deviations "
            f"{side} the median {fmt(point.expected)} of the last {self.params.window} points "
            f"(band {fmt(point.lower)}–{fmt(point.upper)})."
        )
