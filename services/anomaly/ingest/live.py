"""What one ingest transaction holds: its calls, and each series it locked with its live
model as the transaction goes (``transaction.py`` drives them, ``staging.py`` writes)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from services.anomaly.detectors.base import Detector
from services.anomaly.ingest import statecodec
from services.anomaly.ingest.cache import Entry
from services.anomaly.ingest.outcome import IngestOutcome, PointLike
from services.anomaly.thresholds import Thresholds
from services.common.errors import ApiError

# A new checkpoint is written once the journal holds this many scoring calls or points
# (whichever first): bounded rows and replays, and a full state written rarely. A
# series' first checkpoint comes after its own share of these, between half and all of
# them, fixed by its key (``checkpoint_share``): the series of a remote write target,
# which start together, then checkpoint on different requests from the first on (not
# all on one, a request of seconds), and as often as before (twin detectors fed alike
# stay alike).
CHECKPOINT_CHUNKS = 64
CHECKPOINT_POINTS = 1000
_SHARES = 1024


def checkpoint_share(series_key: str) -> float:
    """The share of ``CHECKPOINT_CHUNKS`` and ``CHECKPOINT_POINTS`` after which a series
    first checkpoints, in (0.5, 1]: spread evenly over series keys, the same in every
    process (a CRC of the key)."""
    return 1.0 - (zlib.crc32(series_key.encode()) % _SHARES) / (2 * _SHARES)


# a series of a detector: (detector id, series key)
SeriesId = tuple[str, str]


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(slots=True)
class LockedSeries:
    """A locked series: its detector's row, its own state row (None: a new series), its
    live detector as the transaction goes, and what to write."""

    detector_row: asyncpg.Record
    series_key: str
    entry: Entry | None
    last_ts: datetime | None
    policy_state: dict[str, Any]
    n_seen: int = 0
    checkpointed: bool = False  # the row holds a checkpoint (else its first is to come)
    new: bool = False  # inserted by this transaction
    state: Any = None  # the stored checkpoint and journal (rebuild), as the lock read them
    stored_journal: bytes = b""
    detector: Detector | None = None
    policy: Thresholds | None = None
    chunks: int = 0  # journaled since the checkpoint
    points: int = 0
    journal: bytes = b""  # to append, or the whole one
    checkpoint: dict[str, Any] | None = None  # a new checkpoint to write
    existing: set[float] | None = None  # stored (epoch s), looked up
    taken: np.ndarray | None = None  # chosen to store by the transaction's calls so far
    scored: bool = False
    submitted: int = 0
    duplicates: int = 0
    last_point: tuple[datetime, float, float] | None = None
    last_anomaly_at: datetime | None = None
    learning: bool | None = None  # the detector's own verdict after its points

    @property
    def detector_id(self) -> str:
        detector_id: str = self.detector_row["id"]
        return detector_id

    def learned(self, epoch: np.ndarray, values: np.ndarray) -> None:
        """Journal a learned batch; checkpoint when the journal is long enough."""
        assert self.detector is not None
        self.chunks += 1
        self.points += int(epoch.shape[0])
        if (
            self.chunks * 2 >= CHECKPOINT_CHUNKS or self.points * 2 >= CHECKPOINT_POINTS
        ) and self._checkpoint_due():
            self.checkpoint = {"model": statecodec.pack(self.detector.get_state())}
            self.checkpointed = True
            self.journal = b""
            self.chunks = self.points = 0
        else:
            self.journal += statecodec.journal_chunk(epoch, values)

    def _checkpoint_due(self) -> bool:
        share = 1.0 if self.checkpointed else checkpoint_share(self.series_key)
        chunks, points = math.ceil(CHECKPOINT_CHUNKS * share), math.ceil(CHECKPOINT_POINTS * share)
        return self.chunks >= chunks or self.points >= points


@dataclass
class Refused:
    """A point refused for its own sake (its detector has ``max_series`` series already)."""

    index: int
    detector_id: str
    series_key: str


@dataclass
class Call:
    """One request's points within a transaction, and what it came to."""

    points: Sequence[PointLike]
    keys: Sequence[Any] | None = None  # event path: ids of the rows to score
    series: list[str] | None = None  # each point's series key (None: not assigned yet)
    labelled: bool | None = None  # whether any point has labels (None: not looked yet)
    error: ApiError | None = None
    expected: int = 0  # points to store
    late: int = 0
    refused: list[Refused] = field(default_factory=list)
    outcome: IngestOutcome = field(default_factory=IngestOutcome)
    quiet_until: float | None = None  # points at or before it page nobody (a backfill)
    # its series (sorted) and each point's among them, -1: refused (``calls.group_points``)
    groups: tuple[list[SeriesId], np.ndarray] | None = None
    _epoch: np.ndarray | None = None
    _values: np.ndarray | None = None
    _detector_ids: list[str] | None = None

    @property
    def detector_ids(self) -> list[str]:
        """Each point's detector."""
        if self._detector_ids is None:
            self._detector_ids = [p.detector_id for p in self.points]
        return self._detector_ids

    def is_labelled(self) -> bool:
        """Whether some point may be in a labelled series (else every point is in its
        detector's unlabelled one: the usual case, kept free of per-point work)."""
        if self.labelled is None:
            self.labelled = self.series is not None or any(
                getattr(p, "labels", None) is not None for p in self.points
            )
        return self.labelled

    @property
    def values(self) -> np.ndarray:
        """The points' values."""
        if self._values is None:
            self._values = np.fromiter(
                (p.value for p in self.points), dtype=np.float64, count=len(self.points)
            )
        return self._values

    @property
    def epoch(self) -> np.ndarray:
        """The points' timestamps in epoch seconds (what the detectors see)."""
        if self._epoch is None:
            self._epoch = np.fromiter(
                (p.timestamp.timestamp() for p in self.points),
                dtype=np.float64,
                count=len(self.points),
            )
        return self._epoch
