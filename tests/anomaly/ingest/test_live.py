"""A series' checkpoint share: series started together do not all checkpoint at once."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from services.anomaly.ingest.live import (
    CHECKPOINT_CHUNKS,
    CHECKPOINT_POINTS,
    LockedSeries,
    checkpoint_share,
)
from services.anomaly.ingest.scoring import build_detector
from services.anomaly.series import series_key


def test_the_share_is_fixed_by_the_key_and_between_half_and_all() -> None:
    keys = [series_key({"instance": f"i{s:05d}", "job": "api"}, None) for s in range(1000)]
    shares = [checkpoint_share(key) for key in keys]
    assert shares == [checkpoint_share(key) for key in keys]  # the same in any process
    assert all(0.5 < share <= 1.0 for share in shares)
    assert 0.5 < checkpoint_share("{}") <= 1.0


def test_a_thousand_series_started_together_checkpoint_over_many_requests() -> None:
    """Remote write: every series gets a point or two per request, all from the same
    request on; their first checkpoints spread over some thirty requests (and so the
    ones after them)."""
    keys = [series_key({"instance": f"i{s:05d}"}, None) for s in range(1000)]
    by_chunks = Counter(math.ceil(CHECKPOINT_CHUNKS * checkpoint_share(k)) for k in keys)
    assert len(by_chunks) >= 30
    assert max(by_chunks.values()) <= 60  # of 1,000: no request checkpoints them all
    by_points = Counter(math.ceil(CHECKPOINT_POINTS * checkpoint_share(k) / 20) for k in keys)
    assert len(by_points) >= 20 and max(by_points.values()) <= 80


def _series(key: str, *, checkpointed: bool) -> LockedSeries:
    return LockedSeries(
        detector_row={"id": "d"},  # type: ignore[arg-type]
        series_key=key,
        entry=None,
        last_ts=None,
        policy_state={},
        checkpointed=checkpointed,
        detector=build_detector("ewma", {}),
    )


def _chunks_to_checkpoint(live: LockedSeries) -> int:
    for k in range(1, 2 * CHECKPOINT_CHUNKS):
        live.learned(np.array([60.0 * k]), np.array([1.0]))
        if live.checkpoint is not None:
            assert live.chunks == 0 and live.journal == b""
            return k
        assert live.chunks == k
    raise AssertionError("no checkpoint")


def test_a_series_first_checkpoints_after_its_share_then_every_checkpoint_chunks() -> None:
    key = series_key({"instance": "i00042"}, None)
    first = math.ceil(CHECKPOINT_CHUNKS * checkpoint_share(key))
    assert first < CHECKPOINT_CHUNKS
    fresh = _series(key, checkpointed=False)
    assert _chunks_to_checkpoint(fresh) == first
    fresh.checkpoint = None
    assert _chunks_to_checkpoint(fresh) == CHECKPOINT_CHUNKS  # checkpointed since
    assert _chunks_to_checkpoint(_series(key, checkpointed=True)) == CHECKPOINT_CHUNKS
