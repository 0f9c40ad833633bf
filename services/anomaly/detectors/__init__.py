"""Streaming anomaly detectors, one algorithm per module.

``ALGORITHMS`` maps each algorithm name (the ``algorithm`` column of a
detector) to its class; ``create`` builds one from user parameters. Every
class implements :class:`~services.anomaly.detectors.base.Detector`.
"""

from __future__ import annotations

from typing import Any

from .auto import AutoDetector
from .base import Detector, InvalidInput, InvalidParams, PointScore, Scores
from .cusum import CusumDetector
from .drift import DriftDetector
from .ewma import EwmaDetector
from .flatline import FlatlineDetector
from .gap import GapDetector
from .holt_winters import HoltWintersDetector
from .iqr import IqrDetector
from .level_shift import LevelShiftDetector
from .mad import MadDetector
from .seasonal import SeasonalDetector
from .static import StaticDetector
from .volatility import VolatilityDetector

ALGORITHMS: dict[str, type[Detector]] = {
    "static": StaticDetector,
    "ewma": EwmaDetector,
    "mad": MadDetector,
    "iqr": IqrDetector,
    "cusum": CusumDetector,
    "level_shift": LevelShiftDetector,
    "drift": DriftDetector,
    "seasonal": SeasonalDetector,
    "holt_winters": HoltWintersDetector,
    "flatline": FlatlineDetector,
    "volatility": VolatilityDetector,
    "gap": GapDetector,
    "auto": AutoDetector,
}


def create(algorithm: str, params: dict[str, Any] | None = None) -> Detector:
    """A fresh detector of ``algorithm`` configured by ``params``.

    Raises ``InvalidParams`` naming the field: ``algorithm`` when it is not
    known, else the first parameter the algorithm refuses.
    """
    detector_class = ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    if detector_class is None:
        known = ", ".join(sorted(ALGORITHMS))
        raise InvalidParams("algorithm", f"unknown algorithm {algorithm!r}; choose one of {known}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("params", "must be an object of parameter names to values")
    for key in params:
        if not isinstance(key, str):
            raise InvalidParams("params", f"parameter names must be strings, not {key!r}")
    return detector_class(**params)


__all__ = [
    "ALGORITHMS",
    "Detector",
    "InvalidInput",
    "InvalidParams",
    "PointScore",
    "Scores",
    "create",
]
