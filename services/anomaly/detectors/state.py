"""Plain-JSON state of detectors: values and the codecs of declared state fields.

A detector lists its state in ``state_fields`` (JSON name -> codec); the
attribute holding a field is the name with a leading underscore, and
:class:`~.base.Detector` gets and sets the state from that list.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


def float_list(values: Any) -> list[float]:
    """A JSON list of floats (exact round trip through ``json``)."""
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1).tolist()]


def optional_float(value: float | None) -> float | None:
    """JSON-safe float: NaN becomes None (Postgres jsonb refuses NaN)."""
    if value is None or math.isnan(value):
        return None
    return float(value)


def float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


class Codec(NamedTuple):
    """How one state field goes to JSON (``dump``) and back (``load``)."""

    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _float_array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1)


INT = Codec(int, int)
FLOAT = Codec(float, float)
#: A float that may be missing (None; NaN is stored as None).
OPTIONAL_FLOAT = Codec(optional_float, _optional)
#: A numpy array of floats.
FLOAT_ARRAY = Codec(float_list, _float_array)
#: A Python list of floats.
FLOAT_LIST = Codec(float_list, lambda value: [float(v) for v in value])
