"""Static bounds: a value outside fixed limits set by the operator."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from .base import Detector, DetectorParams, InvalidParams, PointScore, Scores
from .explain import fmt
from .scores import (
    empty_scores,
)


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
    a value outside ``[lower, upper]`` scores 1, any other value scores 0.

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
    >>> detector.score(np.arange(3.0), np.array([50.0, 95.0, 90.0])).score.tolist()
    [0.0, 1.0, 0.0]
    """

    name: ClassVar[str] = "static"
    Params: ClassVar[type[DetectorParams]] = StaticParams
    params: StaticParams

    def reset(self) -> None:
        self._count = 0

    @property
    def warmup(self) -> int:
        return 0

    def _score(self, timestamps: np.ndarray, values: np.ndarray, learn: bool) -> Scores:
        n = values.shape[0]
        result = empty_scores(n)
        lower = -math.inf if self.params.lower is None else self.params.lower
        upper = math.inf if self.params.upper is None else self.params.upper
        result.score[:] = ((values < lower) | (values > upper)).astype(np.float64)
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
