"""Rolling quantile band: a point outside the interquartile band of the latest points."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from .base import DetectorParams, InvalidParams, PointScore
from .explain import fmt, learning_sentence
from .robust import sorted_quantile
from .scores import safe_scale
from .window import Band, WindowDetector


class IqrParams(DetectorParams):
    window: int = Field(100, ge=4, description="past points the quantiles are taken over")
    q_low: float = Field(0.25, gt=0.0, lt=0.5, description="lower quantile of the band")
    q_high: float = Field(0.75, gt=0.5, lt=1.0, description="upper quantile of the band")
    min_std: float = Field(0.0, ge=0.0, description="smallest scale assumed on either side")

    @model_validator(mode="after")
    def _window_holds_quantiles(self) -> IqrParams:
        # each quantile must be an interpolation of distinct order statistics
        tail = min(self.q_low, 1.0 - self.q_high)
        if tail * (self.window - 1) < 1.0:
            raise InvalidParams(
                "window",
                f"{self.window} is too short for quantile {tail:g}: "
                f"needs at least {math.ceil(1.0 / tail + 1)} points",
            )
        return self


class IqrDetector(WindowDetector):
    """Rolling quantile (IQR) band, asymmetric.

    Catches spikes and dips on skewed series (latencies, queue lengths) where a
    symmetric band is wrong on one side: the spread above the median is taken
    from the upper quantile and the spread below from the lower one, each
    scaled to a normal-equivalent standard deviation
    (``(q_high - median) / Phi^-1(q_high)``). Each point is compared with the
    ``window`` points before it.

    Parameters
    ----------
    window : int, default 100
        Past points used (at least 4, and enough to hold the quantiles). Also
        the warm-up.
    q_low, q_high : float, default 0.25, 0.75
        Quantiles bounding the band, ``0 < q_low < 0.5 < q_high < 1``.
    min_std : float, default 0.0
        Floor on each side's scale (units of the value).

    Score: ``1 - P(|Z| >= |z|)`` with ``z`` the distance from the median in
    the scale of the side the point is on, on the shared scale (the normal
    tail up to 0.9999, then ranked, strictly rising with |z| and never 1);
    band: median ± 2.58 side scale.
    A side whose quantile equals the median borrows the other side's scale,
    then the window's standard deviation (sparse counts).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> values = rng.lognormal(3.0, 0.3, 300)   # skewed, like latencies
    >>> values[200] = 60.0
    >>> scores = IqrDetector().score(np.arange(300.0), values)
    >>> bool(scores.score[200] > 0.999), bool(scores.upper[200] - scores.expected[200]
    ...     > scores.expected[200] - scores.lower[200])
    (True, True)
    """

    name: ClassVar[str] = "iqr"
    Params: ClassVar[type[DetectorParams]] = IqrParams
    params: IqrParams

    def reset(self) -> None:
        super().reset()
        dist = NormalDist()
        self._z_high = dist.inv_cdf(self.params.q_high)
        self._z_low = -dist.inv_cdf(self.params.q_low)

    @property
    def history_length(self) -> int:
        return self.params.window

    def _score_windows(self, windows: np.ndarray) -> Band:
        past, current = windows[:, :-1], windows[:, -1]
        ordered = np.sort(past, axis=1)
        q_low = sorted_quantile(ordered, self.params.q_low)
        median = sorted_quantile(ordered, 0.5)
        q_high = sorted_quantile(ordered, self.params.q_high)
        up = (q_high - median) / self._z_high
        down = (median - q_low) / self._z_low
        fallback = ordered.std(axis=1)
        up, down = (
            np.where(up > 0.0, up, np.where(down > 0.0, down, fallback)),
            np.where(down > 0.0, down, np.where(up > 0.0, up, fallback)),
        )
        up = safe_scale(up, median, self.params.min_std)
        down = safe_scale(down, median, self.params.min_std)
        deviation = current - median
        z = np.where(deviation >= 0.0, deviation / up, deviation / down)
        return Band(z, median, down, up)

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("Quantile band", self.warmup)
        where = "inside"
        if value > point.upper:
            where = "above"
        elif value < point.lower:
            where = "below"
        return (
            f"Quantile band: value {fmt(value)} is {where} the band "
            f"{fmt(point.lower)}–{fmt(point.upper)} drawn from the "
            f"{self.params.q_low:g}/{self.params.q_high:g} quantiles of the last "
            f"{self.params.window} points (median {fmt(point.expected)}, "
            f"{abs(point.detail):.1f} scaled deviations)."
        )
