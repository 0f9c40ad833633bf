"""The ranges of ``auto``: the recent ranges against a direct window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.anomaly.detectors.auto.params import RECENT_BLOCKS as _RECENT_BLOCKS
from services.anomaly.detectors.auto.ranges import RecentRanges


@pytest.mark.parametrize("recent", [10, 50, 1000])
def test_recent_range_matches_a_direct_window(recent: int) -> None:
    # the mean and recent channels' ranges: completed blocks (at most 10) plus the open
    # block, before t
    rng = np.random.default_rng(recent)
    size = recent // _RECENT_BLOCKS
    y = rng.normal(size=2500)
    recent_ranges = RecentRanges(recent)
    count = 0
    his, los = [], []
    start = 0
    for length in rng.integers(1, 400, 40):
        part = y[start : start + int(length)]
        if part.size == 0:
            break
        ranges = recent_ranges.before_each(np.stack((part, -part, part, -part)), count)[0].copy()
        hi, lo = ranges[0], -ranges[1]
        np.testing.assert_array_equal(ranges[2:], ranges[:2])
        count += part.size
        his.append(hi)
        los.append(lo)
        start += part.size
    hi, lo = np.concatenate(his), np.concatenate(los)
    for t in range(hi.shape[0]):
        first = max(0, (t // size - _RECENT_BLOCKS) * size)
        window = y[first:t]
        assert hi[t] == (window.max() if window.size else -math.inf)
        assert lo[t] == (window.min() if window.size else math.inf)
