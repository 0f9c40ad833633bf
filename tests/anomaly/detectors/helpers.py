"""Series and comparisons shared by the detector tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from services.anomaly.detectors import Detector, Scores

# parameters the contract suite uses for algorithms that have no usable defaults
CONTRACT_PARAMS: dict[str, dict[str, Any]] = {
    "static": {"lower": 30.0, "upper": 75.0},
}

CONTRACT_LENGTH = 1400
FIVE_MINUTES = 300.0


def contract_series(seed: int = 20261122) -> tuple[np.ndarray, np.ndarray]:
    """A realistic mixed series: daily cycle, jittered 5-minute cadence, one
    gap, a spike, a level shift, a flat stretch, a noisier tail, values
    rounded to 0.1 (ties), timestamps in 2026."""
    rng = np.random.default_rng(seed)
    n = CONTRACT_LENGTH
    intervals = FIVE_MINUTES + rng.normal(0.0, 8.0, n)
    intervals[1150] += 3 * 3600.0  # collector down for three hours
    timestamps = 1_790_000_000.0 + np.cumsum(intervals)
    values = 50.0 + 10.0 * np.sin(2 * np.pi * timestamps / 86400.0) + rng.normal(0, 2.0, n)
    values[1100] += 25.0
    values[1200:] += 8.0
    values[1300:1320] = values[1299]
    values[1350:] += rng.normal(0, 6.0, n - 1350)
    return timestamps, np.round(values, 1)


# -- ordinary data and excursions from it (the ranking property) ----------------------
#: the standard deviation of the ordinary series' noise: the excursions' unit
NOISE = 2.0
#: distances of the ranking probes, in noise units (or points, or intervals)
EXCURSION_DISTANCES = (10.0, 30.0, 100.0, 1e3, 1e4)
ORDINARY_LENGTH = 1200


def _ordinary_level(timestamps: np.ndarray) -> np.ndarray:
    return 50.0 + 10.0 * np.sin(2 * np.pi * timestamps / 86400.0)


def ordinary_series(seed: int = 20261123) -> tuple[np.ndarray, np.ndarray]:
    """The contract series without its anomalies: a daily cycle, noise of
    ``NOISE``, a jittered 5-minute cadence, values rounded to 0.1; long
    enough to warm every algorithm (1,000 points for the seasonal ones)."""
    rng = np.random.default_rng(seed)
    timestamps = 1_790_000_000.0 + np.cumsum(FIVE_MINUTES + rng.normal(0.0, 8.0, ORDINARY_LENGTH))
    values = _ordinary_level(timestamps) + rng.normal(0.0, NOISE, ORDINARY_LENGTH)
    return timestamps, np.round(values, 1)


def excursion(
    detector: Detector, timestamps: np.ndarray, values: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points after ``timestamps``/``values`` whose last one is ``distance`` from normal.

    Distance as the algorithm sees it, with the same noise at every distance
    so only the distance changes: for ``flatline`` a stuck run of
    ``10 sqrt(distance / 10)`` points (10 to 316: a run far beyond the
    detector's memory of ``1 / alpha`` steps becomes the normal it learns);
    for ``gap`` one point after ``distance`` usual
    intervals; for ``volatility`` a burst of ``window`` points with
    ``distance`` times the noise; for ``level_shift`` a step of ``distance``
    noise units held for ``window`` points; for ``drift`` a ramp of
    ``window`` points rising by ``distance`` noise units; for ``static`` one
    point ``distance`` noise units beyond the upper bound; for every other
    algorithm (``cusum``'s shift onset included) one point ``distance`` noise
    units above the ordinary level.
    """
    name = detector.name
    params: Any = detector.params
    rng = np.random.default_rng(99)
    if name == "gap":
        stamps = timestamps[-1:] + distance * FIVE_MINUTES
        return stamps, _ordinary_level(stamps)
    if name == "flatline":
        length = round(10.0 * math.sqrt(distance / 10.0))
    elif name in ("volatility", "level_shift", "drift"):
        length = int(params.window)
    else:
        length = 1
    stamps = timestamps[-1] + FIVE_MINUTES * np.arange(1.0, length + 1.0)
    level = _ordinary_level(stamps)
    noise = NOISE * rng.standard_normal(length)
    if name == "flatline":
        return stamps, np.full(length, values[-1])
    if name == "volatility":
        return stamps, level + distance * noise
    if name == "level_shift":
        return stamps, level + distance * NOISE + noise
    if name == "drift":
        return stamps, level + distance * NOISE * np.arange(1.0, length + 1.0) / length + noise
    if name == "static":
        return stamps, np.array([params.upper + distance * NOISE])
    return stamps, level + distance * NOISE


def value_scale(values: np.ndarray) -> float:
    return float(max(1.0, np.max(np.abs(values))))


def assert_scores_close(actual: Scores, expected: Scores, *, scale: float = 1.0) -> None:
    """Equal to floating tolerance (1e-9 relative; NaN where NaN)."""
    assert len(actual) == len(expected)
    np.testing.assert_allclose(actual.score, expected.score, rtol=0, atol=1e-9)
    for field in ("expected", "lower", "upper"):
        np.testing.assert_allclose(
            getattr(actual, field),
            getattr(expected, field),
            rtol=1e-9,
            atol=1e-9 * scale,
            equal_nan=True,
            err_msg=field,
        )
    if expected.detail is None:
        assert actual.detail is None
    else:
        assert actual.detail is not None
        np.testing.assert_allclose(
            actual.detail, expected.detail, rtol=1e-9, atol=1e-9 * scale, equal_nan=True
        )


def assert_scores_identical(actual: Scores, expected: Scores) -> None:
    """Bit-for-bit equal (same arithmetic on the same state)."""
    for field in ("score", "expected", "lower", "upper", "detail"):
        a, b = getattr(actual, field), getattr(expected, field)
        if b is None:
            assert a is None
        else:
            np.testing.assert_array_equal(a, b, err_msg=field)


def stack(points: list[Any]) -> Scores:
    """Scores assembled from ``score_one`` results."""
    details = [p.detail for p in points]
    return Scores(
        score=np.array([p.score for p in points]),
        expected=np.array([p.expected for p in points]),
        lower=np.array([p.lower for p in points]),
        upper=np.array([p.upper for p in points]),
        detail=None if details and details[0] is None else np.array(details, dtype=np.float64),
    )


def concat(parts: list[Scores]) -> Scores:
    return Scores(
        score=np.concatenate([p.score for p in parts]),
        expected=np.concatenate([p.expected for p in parts]),
        lower=np.concatenate([p.lower for p in parts]),
        upper=np.concatenate([p.upper for p in parts]),
        detail=None if parts[0].detail is None else np.concatenate([p.detail for p in parts]),  # type: ignore[misc]
    )


def assert_state_close(actual: Any, expected: Any, path: str = "state") -> None:
    """Same structure, numbers equal to 1e-9 relative (states of the two paths)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for key in expected:
            assert_state_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, b) in enumerate(zip(actual, expected, strict=True)):
            assert_state_close(a, b, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(actual, float | int), path
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), (
            f"{path}: {actual} != {expected}"
        )
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
