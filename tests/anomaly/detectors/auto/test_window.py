"""The local window's compiled helpers: the sorted copy follows the ring."""

from __future__ import annotations

import numpy as np
import pytest

from services.anomaly.detectors.auto import window


@pytest.mark.parametrize("width", [1, 3, 16, 72])
def test_push_keeps_the_sorted_copy_of_the_ring(width: int) -> None:
    rng = np.random.default_rng(width)
    ring, srt = np.zeros(width), np.zeros(width)
    fill, pos = 0, 0
    for step in range(2000):
        # ties on purpose: rounded values, and runs of one value
        x = float(np.round(rng.normal(0.0, 3.0))) if step % 50 > 10 else 7.0
        pos = window.push(ring, srt, fill, pos, width, x)
        fill = min(fill + 1, width)
        np.testing.assert_array_equal(srt[:fill], np.sort(ring[:fill]))
        newest = ring[(pos - 1) % width] if fill == width else ring[fill - 1]
        assert newest == x


@pytest.mark.parametrize("n", [1, 2, 5, 72])
def test_quantile_sorted_is_numpy_linear(n: int) -> None:
    a = np.sort(np.random.default_rng(n).normal(size=n))
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert window.quantile_sorted(a, n, q) == pytest.approx(np.quantile(a, q), abs=1e-12)
    assert np.isnan(window.quantile_sorted(a, 0, 0.5))
