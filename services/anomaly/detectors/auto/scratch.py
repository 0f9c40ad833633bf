"""Work arrays of ``auto`` reused from batch to batch.

Large fresh temporaries cost page faults on every batch. One set per process
is taken by one batch at a time (a batch that finds it taken, in another
thread, works with fresh arrays): by name, the array of the latest shape. A
work array is never returned to a caller nor kept in the state.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import numpy as np

_SHARED_SCRATCH: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}
_SCRATCH_LOCK = threading.Lock()
#: Largest work array kept for reuse (elements); larger ones are allocated each time.
_SCRATCH_MAX = 1 << 16


class _ActiveScratch(threading.local):
    arrays: dict[str, tuple[tuple[int, ...], np.ndarray]] | None = None


_ACTIVE = _ActiveScratch()

#: Read-only empty index and value arrays.
NO_POINTS = np.empty(0, dtype=np.intp)
NO_POINTS.setflags(write=False)
NO_VALUES = np.empty(0)
NO_VALUES.setflags(write=False)


class SharedScratch:
    """``with SharedScratch():`` lets :func:`scratch` hand out the shared arrays, if free."""

    __slots__ = ("_shared",)

    def __enter__(self) -> None:
        self._shared = _SCRATCH_LOCK.acquire(blocking=False)
        _ACTIVE.arrays = _SHARED_SCRATCH if self._shared else None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        _ACTIVE.arrays = None
        if self._shared:
            _SCRATCH_LOCK.release()


def scratch(name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """An uninitialised work array (never returned to a caller, never kept in the state)."""
    arrays = _ACTIVE.arrays
    if arrays is None:
        return np.empty(shape, dtype=dtype)
    entry = arrays.get(name)
    if entry is not None and entry[0] == shape:
        return entry[1]
    array = np.empty(shape, dtype=dtype)
    if array.size <= _SCRATCH_MAX:
        arrays[name] = (shape, array)
    return array
