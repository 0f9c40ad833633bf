"""Volatility shift: the point-to-point noise grows or shrinks."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field

from .base import DetectorParams, PointScore
from .explain import fmt, learning_sentence
from .scores import safe_scale
from .window import Band, WindowDetector


def _effective_dof(points: int) -> float:
    """Chi-square degrees of freedom of the successive-difference variance.

    ``sum(diff^2) / (2 (n - 1))`` has variance ``sigma^4 (3n - 4) / (n - 1)^2``
    for independent normal points; matching ``2 sigma^4 / dof`` gives this.
    """
    return 2.0 * (points - 1) ** 2 / (3.0 * points - 4.0)


class VolatilityParams(DetectorParams):
    window: int = Field(20, ge=5, description="recent points (including the current one)")
    reference_window: int = Field(120, ge=10, description="points before the recent window")
    min_std: float = Field(0.0, ge=0.0, description="smallest standard deviation assumed")


class VolatilityDetector(WindowDetector):
    """Variance ratio of a recent window against the window before it.

    Catches a change of noise level in either direction: a service that starts
    flapping, a sensor that gets jittery, or one that goes quiet. The variance
    of each window is estimated from successive differences
    (``mean(diff^2) / 2``), which a level shift or a slow trend barely moves,
    so this detector is about noise rather than level.

    The ratio ``F = var_recent / var_reference`` is mapped to a normal deviate
    with Paulson's cube-root approximation of the F distribution, using the
    effective degrees of freedom of the difference-based estimator. A window
    and reference that are both constant have ratio 1.

    Parameters
    ----------
    window : int, default 20
        Recent points, the current one included (at least 5).
    reference_window : int, default 120
        Points before the recent window (at least 10).
    min_std : float, default 0.0
        Floor on both standard deviations (units of the value).

    Score: ``1 - P(|Z| >= |z|)`` on the shared scale (the normal tail up to
    0.9999, then ranked, never 1). Paulson's deviate rises strictly with the
    ratio but towards a bound (about 18.9 for a burst, -7.5 for a window gone
    flat, with the defaults), so a bigger burst always scores higher, by less
    and less; ``expected`` is the reference window's mean,
    the band its mean ± 2.58 reference std; ``detail`` is the ratio of standard
    deviations (recent / reference). Warm-up: ``window + reference_window - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(8)
    >>> values = np.concatenate([rng.normal(5, 0.5, 300), rng.normal(5, 2.0, 100)])
    >>> scores = VolatilityDetector().score(np.arange(400.0), values)
    >>> bool(scores.score[300:320].max() > 0.999), bool(np.median(scores.score[140:300]) < 0.9)
    (True, True)
    """

    name: ClassVar[str] = "volatility"
    Params: ClassVar[type[DetectorParams]] = VolatilityParams
    params: VolatilityParams

    def reset(self) -> None:
        super().reset()
        recent_dof = _effective_dof(self.params.window)
        reference_dof = _effective_dof(self.params.reference_window)
        self._c_recent = 2.0 / (9.0 * recent_dof)
        self._c_reference = 2.0 / (9.0 * reference_dof)

    @property
    def history_length(self) -> int:
        return self.params.window + self.params.reference_window - 1

    def _score_windows(self, windows: np.ndarray) -> Band:
        reference = self.params.reference_window
        steps = np.diff(windows, axis=1)
        squared = steps * steps
        # the step across the two windows belongs to neither
        var_reference = squared[:, : reference - 1].mean(axis=1) / 2.0
        var_recent = squared[:, reference:].mean(axis=1) / 2.0
        level = windows[:, :reference].mean(axis=1)
        floor = safe_scale(np.zeros_like(level), level, self.params.min_std)
        sd_reference = np.maximum(np.sqrt(var_reference), floor)
        ratio = np.maximum(np.sqrt(var_recent), floor) / sd_reference
        return Band(self._ratio_to_z(ratio * ratio), level, sd_reference, detail=ratio)

    def _ratio_to_z(self, f_ratio: np.ndarray) -> np.ndarray:
        """Paulson (1942): normal deviate of an F ratio via cube roots."""
        cube = np.cbrt(f_ratio)
        numerator = (1.0 - self._c_reference) * cube - (1.0 - self._c_recent)
        return numerator / np.sqrt(self._c_recent + cube * cube * self._c_reference)

    def explain(self, value: float, point: PointScore) -> str:
        if math.isnan(point.expected) or point.detail is None:
            return learning_sentence("Volatility", self.warmup)
        ratio = point.detail
        change = "higher" if ratio >= 1.0 else "lower"
        factor = ratio if ratio >= 1.0 else (1.0 / ratio if ratio > 0 else math.inf)
        return (
            f"Volatility: the point-to-point noise of the last {self.params.window} points is "
            f"{factor:.1f}× {change} than over the {self.params.reference_window} points "
            f"before (latest value {fmt(value)}, usual range {fmt(point.lower)}–"
            f"{fmt(point.upper)})."
        )
