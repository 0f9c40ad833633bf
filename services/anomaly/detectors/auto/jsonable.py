"""Plain JSON for the state of ``auto``: non-finite floats travel as None."""

from __future__ import annotations

import math

import numpy as np


def to_json(x: float) -> float | None:
    """``x``, or None when it is not finite."""
    return float(x) if math.isfinite(x) else None


def from_json(x: float | None, default: float) -> float:
    """The float stored by :func:`to_json` (``default`` for None)."""
    return default if x is None else float(x)


def list_to_json(a: np.ndarray) -> list[float | None]:
    """An array as a list, non-finite entries as None."""
    out = a.tolist()
    if not np.isfinite(a).all():
        out = [v if math.isfinite(v) else None for v in out]
    return out


def list_from_json(a: list[float | None], missing: float = math.nan) -> np.ndarray:
    """The array stored by :func:`list_to_json` (``missing`` for None)."""
    return np.asarray([missing if v is None else v for v in a], dtype=np.float64)
