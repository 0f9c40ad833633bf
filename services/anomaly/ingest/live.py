"""What one ingest transaction holds: its calls, and each series it locked with its live
model as the transaction goes (``transaction.py`` drives them, ``staging.py`` writes)."""

from __future__ import annotations

import math
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
# (whichever first): bounded rows and replays, and a full state written rarely.
CHECKPOINT_CHUNKS = 64
CHECKPOINT_POINTS = 1000

# a series of a detector: (detector id, series key)
SeriesId = tuple[str, str]


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass
class LockedSeries:
    """A locked series: its detector's row, its own state row (None: a new series), its
    live detector as the transaction goes, and what to write."""

    detector_row: asyncpg.Record
    series_key: str
    entry: Entry | None
    last_ts: datetime | None
    policy_state: dict[str, Any]
    n_seen: int = 0
    new: bool = False  # inserted by this transaction
    state: Any = None  # the stored checkpoint and journal (rebuild), as the lock read them
    stored_journal: bytes = b""
    detector: Detector | None = None
    policy: Thresholds | None = None
    chunks: int = 0  # journaled since the checkpoint
    points: int = 0
    journal: bytearray = field(default_factory=bytearray)  # to append, or the whole one
    checkpoint: dict[str, Any] | None = None  # a new checkpoint to write
    existing: set[float] = field(default_factory=set)  # stored (epoch s), looked up
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
        if self.chunks >= CHECKPOINT_CHUNKS or self.points >= CHECKPOINT_POINTS:
            self.checkpoint = {"model": statecodec.pack(self.detector.get_state())}
            self.journal = bytearray()
            self.chunks = self.points = 0
        else:
            self.journal += statecodec.journal_chunk(epoch, values)


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
    _epoch: np.ndarray | None = None
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
    def epoch(self) -> np.ndarray:
        """The points' timestamps in epoch seconds (what the detectors see)."""
        if self._epoch is None:
            self._epoch = np.fromiter(
                (p.timestamp.timestamp() for p in self.points),
                dtype=np.float64,
                count=len(self.points),
            )
        return self._epoch


class Stamps:
    """The timestamps of the points at ``order`` (looked up only for the few needed)."""

    def __init__(self, points: Sequence[PointLike], order: list[int]) -> None:
        self.points = points
        self.order = order

    def __getitem__(self, i: int) -> datetime:
        return self.points[self.order[i]].timestamp
