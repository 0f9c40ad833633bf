"""Series the ``auto`` tests share: regular timestamps and a few shapes."""

from __future__ import annotations

import numpy as np

from services.anomaly.detectors.auto import AutoDetector
from services.anomaly.detectors.auto.params import CHANNELS

START = 1_790_000_000.0
MINUTE, FIVE_MINUTES, HOUR, DAY = 60.0, 300.0, 3600.0, 86400.0


def stamps(n: int, cadence: float = FIVE_MINUTES, *, jitter: float = 0.0, seed: int = 0):
    """``n`` increasing timestamps ``cadence`` apart (uniform jitter of +-``jitter``)."""
    rng = np.random.default_rng(seed)
    return START + np.cumsum(cadence + rng.uniform(-jitter, jitter, n))


def white(n: int, *, level: float = 20.0, sigma: float = 1.0, seed: int = 0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, sigma, n)


def channel(detail: float) -> str:
    return CHANNELS[int(detail)]


def alert_rate(scores: np.ndarray, threshold: float = 0.99) -> float:
    return float(np.mean(scores >= threshold))


def run(ts: np.ndarray, values: np.ndarray, **params):
    """A fresh detector and its scores of the whole series."""
    detector = AutoDetector(**params)
    return detector, detector.score(ts, values)
