"""Compact JSON for detector state: long float lists travel as base64 float64.

A detector's ``get_state()`` is plain JSON (floats, ints, lists, dicts, None
for "no value"). Encoding thousands of floats as decimal text, and parsing
them back, dominates the cost of saving and loading a state on every ingest.
``pack`` replaces each list of 8 or more elements that are all floats or None
by ``{"$f8": <base64 of little-endian float64>}`` (None travels as NaN, which a
JSON state cannot otherwise hold); ``unpack`` restores the exact lists. Float
values round-trip bit for bit; everything else is left as it is.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

MIN_PACKED = 8
_KEY = "$f8"


def pack(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: pack(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) >= MIN_PACKED and all(type(e) is float or e is None for e in value):
            array = np.array(value, dtype="<f8")  # None becomes NaN
            return {_KEY: base64.b64encode(array.tobytes()).decode("ascii")}
        return [pack(v) for v in value]
    return value


def unpack(value: Any) -> Any:
    if isinstance(value, dict):
        if _KEY in value and len(value) == 1:
            array = np.frombuffer(base64.b64decode(value[_KEY]), dtype="<f8")
            out = array.tolist()
            if np.isnan(array).any():
                out = [None if e != e else e for e in out]
            return out
        return {k: unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack(v) for v in value]
    return value
