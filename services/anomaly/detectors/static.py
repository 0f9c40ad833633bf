"""Static bounds: a value outside fixed limits set by the operator."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from .base import Detector, DetectorParams, InvalidParams, PointScore, Scores
from .explain import fmt
from .scores import KNEE_SURPRISE, empty_scores, score_from_surprise


class StaticParams(DetectorParams):
    lower: float | None = Field(None, description="smallest normal value (inclusive)")
    upper: float | None = Field(None, description="largest normal value (inclusive)")

    @model_validator(mode="after")
    def _bounds(self) -> StaticParams:
        if self.lower is None and self.upper is None:
            raise InvalidParams("upper", "set at least one of lower, upper")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise InvalidParams(
                "upper", f"must not be below lower ({self.upper:g} < {self.lower:g})"
            )
        return self


class StaticDetector(Detector):
    """Fixed lower and/or upper bounds.

    Catches values beyond limits known in advance (a disk above 95 %, a
    temperature below freezing). Nothing is learned and there is no warm-up:
    a value inside ``[lower, upper]`` scores 0, a value outside scores at
    least 0.9999 (the knee of the shared score map, above the default
    ``critical`` 0.999) and more the farther it is, so breaches rank:
    ``score_from_surprise(9.21 (1 + excess / unit))``, i.e.
    ``1 - 1e-4 / (1 + ln(1 + excess / unit)) ** 3``, never 1. The unit is the
    width ``upper - lower`` when both bounds are set, else the magnitude of
    the bound (1 when that is 0).

    ``expected`` is the nearest allowed value (the value itself when inside),
    so the threshold's direction rule sees an upper breach as "up".

    Parameters
    ----------
    lower : float or None, default None
        Smallest normal value (inclusive).
    upper : float or None, default None
        Largest normal value (inclusive). At least one bound is required.

    Examples
    --------
    >>> import numpy as np
    >>> detector = StaticDetector(upper=90.0)
    >>> scores = detector.score(np.arange(4.0), np.array([50.0, 95.0, 90.0, 900.0])).score
    >>> scores[[0, 2]].tolist(), bool(0.9999 < scores[1] < scores[3] < 1.0)
    ([0.0, 0.0], True)
    """

    name: ClassVar[str] = "static"
    Params: ClassVar[type[DetectorParams]] = StaticParams
    params: StaticParams

    def reset(self) -> None:
        self._count = 0
        lower, upper = self.params.lower, self.params.upper
        if lower is not None and upper is not None:
            unit = upper - lower
        else:
            unit = abs(next(b for b in (lower, upper) if b is not None))
        # the scale of an excess (only how breaches rank depends on it)
        self._unit = unit if 0.0 < unit < math.inf else 1.0

    @property
    def warmup(self) -> int:
        return 0

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n)
        lower = -math.inf if self.params.lower is None else self.params.lower
        upper = math.inf if self.params.upper is None else self.params.upper
        with np.errstate(over="ignore"):  # an excess beyond float64 ranks as infinite
            excess = np.maximum(values - upper, lower - values)
        breached = excess > 0.0
        if np.any(breached):
            result.score[breached] = score_from_surprise(
                KNEE_SURPRISE * (1.0 + excess[breached] / self._unit)
            )
        result.expected[:] = np.clip(values, lower, upper)
        if self.params.lower is not None:
            result.lower[:] = lower
        if self.params.upper is not None:
            result.upper[:] = upper
        if learn:
            self._count += n
        return result

    def explain(self, value: float, point: PointScore) -> str:
        if self.params.upper is not None and value > self.params.upper:
            return f"Static bounds: value {fmt(value)} is above the upper limit {fmt(point.upper)}."
        if self.params.lower is not None and value < self.params.lower:
            return f"Static bounds: value {fmt(value)} is below the lower limit {fmt(point.lower)}."
        limits = " and ".join(
            f"{label} {fmt(bound)}"
            for label, bound in (("lower", self.params.lower), ("upper", self.params.upper))
            if bound is not None
        )
        return f"Static bounds: value {fmt(value)} is within the limits ({limits})."
