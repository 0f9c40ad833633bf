"""Compact encodings of detector state: the JSON checkpoint and the binary journal.

**Checkpoint** (``pack``/``unpack``). A detector's ``get_state()`` is plain
JSON (floats, ints, lists, dicts, None for "no value"). Encoding thousands of
floats as decimal text, and parsing them back, dominates the cost of saving
and loading a state. ``pack`` replaces each list of 8 or more elements that
are all floats or None by ``{"$f8": <base64 of little-endian float64>}``
(None travels as NaN, which a JSON state cannot otherwise hold); ``unpack``
restores the exact lists. Float values round-trip bit for bit; everything
else is left as it is, except a dict whose one key starts with ``$`` (which
could read as a packed list), kept as ``{"$dict": <the dict>}``.

**Journal** (``journal_chunk``/``journal_chunks``). Between two checkpoints a
detector row keeps, in a ``bytea``, every batch of points its detector learned
since the checkpoint, one chunk per scoring call: a little-endian int64 count
``n``, then ``n`` float64 epoch seconds, then ``n`` float64 values. Replaying
the chunks in order, one ``score(..., learn=True)`` call each, rebuilds the
learned state exactly (the same arithmetic on the same inputs); chunks append with
``journal || chunk`` in SQL.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np

MIN_PACKED = 8
_KEY = "$f8"
_DICT = "$dict"
_FLOATS = frozenset({float, type(None)})
_COUNT = struct.Struct("<q")
_F8 = np.dtype("<f8")


def pack(value: Any) -> Any:
    if isinstance(value, dict):
        packed = {k: pack(v) for k, v in value.items()}
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return {_DICT: packed}  # not to be read as a packed list
        return packed
    if isinstance(value, list):
        if len(value) >= MIN_PACKED and set(map(type, value)) <= _FLOATS:
            array = np.array(value, dtype=_F8)  # None becomes NaN
            return {_KEY: base64.b64encode(array.tobytes()).decode("ascii")}
        return [pack(v) for v in value]
    return value


def unpack(value: Any) -> Any:
    if isinstance(value, dict):
        if _KEY in value and len(value) == 1:
            array = np.frombuffer(base64.b64decode(value[_KEY]), dtype=_F8)
            out: list[float | None] = array.tolist()
            for i in np.flatnonzero(np.isnan(array)).tolist():
                out[i] = None
            return out
        if _DICT in value and len(value) == 1:
            return {k: unpack(v) for k, v in value[_DICT].items()}
        return {k: unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack(v) for v in value]
    return value


def journal_chunk(epoch: np.ndarray, values: np.ndarray) -> bytes:
    """One learned batch as journal bytes (see the module docstring)."""
    n = int(epoch.shape[0])
    return (
        _COUNT.pack(n)
        + np.ascontiguousarray(epoch, dtype=_F8).tobytes()
        + np.ascontiguousarray(values, dtype=_F8).tobytes()
    )


def journal_chunks(blob: bytes) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The (epoch, values) arrays of the chunks in ``blob``, in order."""
    view = memoryview(blob)
    at = 0
    while at < len(view):
        (n,) = _COUNT.unpack_from(view, at)
        at += _COUNT.size
        if n < 0 or at + 16 * n > len(view):
            raise ValueError("truncated detector journal")
        epoch = np.frombuffer(view, dtype=_F8, count=n, offset=at).astype(np.float64)
        values = np.frombuffer(view, dtype=_F8, count=n, offset=at + 8 * n).astype(np.float64)
        at += 16 * n
        yield epoch, values


def journal_size(points: int) -> int:
    """Bytes of one chunk of ``points`` points."""
    return _COUNT.size + 16 * points
