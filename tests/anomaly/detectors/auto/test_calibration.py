"""The local channel's calibration: a log histogram's quantile, shrunk to a prior."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from services.anomaly.detectors.auto import calibration
from services.anomaly.detectors.auto.layout import HIST_BINS

BIN_OCTAVES = 0.25  # four bins per octave


LOG2_MIN = -3.0  # the first bin holds every deviation up to 1/8


def filled(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """The histogram of the samples, binned here (4 bins per octave from 1/8)."""
    bins = np.floor((np.log2(samples) - LOG2_MIN) / BIN_OCTAVES).astype(int)
    hist = np.bincount(np.clip(bins, 0, HIST_BINS - 1), minlength=HIST_BINS).astype(float)
    return hist, float(samples.size)


def quantile(hist: np.ndarray, total: float, q: float) -> float:
    # the histogram's lower edge became an argument while the channel is tuned
    params = inspect.signature(calibration.quantile.py_func).parameters
    extra = (LOG2_MIN,) if len(params) > 3 else ()
    return calibration.quantile(hist, total, q, *extra)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 0.999])
def test_quantile_matches_the_samples_within_one_bin(q: float) -> None:
    samples = np.exp(np.random.default_rng(3).normal(0.5, 1.0, 20000))
    samples = samples[samples > 0.125]  # smaller ones share the first bin
    hist, total = filled(samples)
    got = quantile(hist, total, q)
    assert abs(math.log2(got) - math.log2(np.quantile(samples, q))) <= BIN_OCTAVES


def test_typical_shrinks_toward_the_prior_with_few_points() -> None:
    hist, total = filled(np.full(500, 20.0))
    own = quantile(hist, total, 0.999)
    prior = 4.0
    typicals = [
        calibration.typical(hist, total, points, 0.999, prior, 200.0)
        for points in (0.0, 10.0, 200.0, 1e4, 1e9)
    ]
    assert typicals[0] == pytest.approx(prior)
    assert typicals[2] == pytest.approx(math.sqrt(own * prior))  # half way, in logs
    assert typicals == sorted(typicals)
    assert typicals[-1] == pytest.approx(own, rel=1e-5)
    assert calibration.typical(np.zeros(HIST_BINS), 0.0, 0.0, 0.999, prior, 200.0) == prior
