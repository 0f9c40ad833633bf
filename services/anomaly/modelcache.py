"""Decoded detector models kept in memory between ingests (one cache per database pool).

The source of truth is the detector row: a checkpoint (``state``), the journal
of points learned since (``journal``), and ``checkpoint_id``, which changes
with every checkpoint and every model reset. An entry remembers the model
built from one checkpoint and the first ``position`` bytes of its journal.
Under the row lock, the scoring pipeline compares it with the row: same
checkpoint and a journal at least that long -> the entry is reused and only
the journal bytes after ``position`` (written by another replica, usually
none) are replayed; anything else -> the model is rebuilt from the row.

An entry is *taken* out of the cache for the duration of a transaction (so
no other request of this process can see a model that is being changed) and
put back only after the transaction committed; a failed transaction simply
drops it. A miss is always safe, only slower.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.anomaly.detectors.base import Detector

# models per process and pool; an `auto` model takes some 100 KB in memory
DEFAULT_CAPACITY = 1024


@dataclass
class Entry:
    """A model as of (``checkpoint_id``, ``position`` bytes of its journal)."""

    model: Detector
    algorithm: str
    params: dict[str, Any]
    checkpoint_id: int
    position: int
    # since the checkpoint: scoring calls journaled and points learned
    chunks: int
    points: int


class ModelCache:
    """A bounded LRU map (account, detector id) -> ``Entry``."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self.hits = 0  # models reused
        self.caught_up = 0  # ... after replaying journal chunks another replica wrote
        self.misses = 0  # models rebuilt from the checkpoint and the journal

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def take(self, account: str, detector_id: str) -> Entry | None:
        """Remove and return the entry (the caller owns the model until ``put``)."""
        return self._entries.pop((account, detector_id), None)

    def put(self, account: str, detector_id: str, entry: Entry) -> None:
        key = (account, detector_id)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


# id(pool) -> (pool, cache); the pool is kept so that its id cannot be reused meanwhile
_caches: dict[int, tuple[asyncpg.Pool, ModelCache]] = {}


def for_pool(pool: asyncpg.Pool) -> ModelCache:
    """The cache of the models read and written through ``pool`` (created on first use)."""
    found = _caches.get(id(pool))
    if found is not None and found[0] is pool:
        return found[1]
    cache = ModelCache()
    _caches[id(pool)] = (pool, cache)
    return cache


def forget(pool: asyncpg.Pool) -> None:
    """Drop the cache of a pool that is closing."""
    found = _caches.get(id(pool))
    if found is not None and found[0] is pool:
        del _caches[id(pool)]
