"""Live models kept in memory between ingests (one cache per ``Ingestor``, i.e. per app),
one per series of a detector.

The source of truth is the series row (``np_anomaly_series``): a checkpoint
(``state``), the journal of points learned since (``journal``), and
``checkpoint_id``, which changes with every checkpoint and every reset of the
learned state. An entry remembers the detector built from one checkpoint and
the first ``position`` bytes of its journal. Under the row lock (the
detector's, then the series'), the scoring pipeline compares it with the row: same
checkpoint and a journal at least that long -> the entry is reused and only
the journal bytes after ``position`` (written by another replica, usually
none) are replayed; anything else -> the detector is rebuilt from the row.

An entry is *taken* out of the cache for the duration of a transaction (so
no other request of this process can see a detector that is being changed) and
put back only after the transaction committed; a failed transaction simply
drops it. A miss is always safe, only slower.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from services.anomaly.detectors.base import Detector

# series (models) per process and app; an `auto` model takes about 35 KB in memory (its
# state is bounded: the same after a day or a year of points), others 2-40 KB
DEFAULT_CAPACITY = 10_000
# label sets -> series keys remembered (``DetectorCache.keys``); forgotten all at once
# past this many (some 10 MB)
KEY_MEMO_LIMIT = 50_000

# (the group_by, the labels' items) -> the series key
KeyMemo = dict[tuple[tuple[str, ...] | None, tuple[tuple[str, str], ...]], str]


@dataclass(slots=True)
class Entry:
    """A detector as of (``checkpoint_id``, ``position`` bytes of its journal)."""

    detector: Detector
    algorithm: str
    params: dict[str, Any]
    checkpoint_id: int
    position: int
    # since the checkpoint: scoring calls journaled and points learned
    chunks: int
    points: int


class DetectorCache:
    """A bounded LRU map (account, (detector id, series key)) -> ``Entry``: one model per
    series; and the ``group_by`` of the detectors seen last (which series a labelled point
    is likely to belong to before its detector is locked: a guess, checked under the
    lock)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, tuple[str, str]], Entry] = OrderedDict()
        self.group_by: dict[tuple[str, str], list[str] | None] = {}
        self.keys: KeyMemo = {}  # series keys of the label sets met (``series_keys``)
        self.hits = 0  # detectors reused
        self.caught_up = 0  # ... after replaying journal chunks another replica wrote
        self.misses = 0  # detectors rebuilt from the checkpoint and the journal

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def take(self, account: str, series: tuple[str, str]) -> Entry | None:
        """Remove and return the entry (the caller owns the detector until ``put``)."""
        return self._entries.pop((account, series), None)

    def put(self, account: str, series: tuple[str, str], entry: Entry) -> None:
        key = (account, series)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def remember_group_by(self, account: str, detector_id: str, group_by: list[str] | None) -> None:
        if len(self.group_by) >= 16 * self.capacity:
            self.group_by.clear()
        self.group_by[(account, detector_id)] = group_by

    def clear(self) -> None:
        self._entries.clear()
        self.group_by.clear()
        self.keys.clear()
