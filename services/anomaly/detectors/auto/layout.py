"""The state of ``auto``: named scalars and arrays the kernel reads and writes in place.

The kernel (:mod:`.kernel`) is compiled and takes plain arrays, so the state
is a handful of float arrays of fixed shapes (sized for the largest series)
plus one array of scalars addressed by the indices below. ``to_json`` keeps
only the used part of each array; ``from_json`` restores it exactly (the
sorted window is rebuilt by sorting the ring, which gives the same array).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .params import (
    CADENCE_INTERVALS,
    LOCAL_MAX_POINTS,
    MAX_ALERTS,
    MAX_SLOTS,
    RECENT_BLOCKS,
    SHORT_MAX_POINTS,
    WEEK_MAX_SLOTS,
)

# Scalars, by index (all finite floats).
SCALARS = (
    "count",  # points learned
    "t_first",  # time of the first point
    "t_last",  # time of the latest point
    "x_last",  # latest value
    "step",  # cadence in seconds (0 until CADENCE_INTERVALS intervals are seen)
    "intervals",  # intervals collected for the cadence
    "noise",  # the level channel's noise unit (EW mean absolute change)
    "noise_n",  # changes averaged into it
    "lo",  # the level channel's fading range
    "hi",
    "ring_pos",  # oldest slot of the local window's ring (once full)
    "ring_fill",  # values in the local window
    "window",  # the local window's length in points (0 until the cadence is known)
    "hist_total",  # weighted count of the local calibration histogram
    "hist_weight",  # weight of the next sample (grows with time, rescaled when large)
    "typical",  # the calibrated typical-high local deviation
    "long_scale",  # slow average of the local scale (its floor)
    "tail_n",  # values in the mean channel's tail
    "tail_pos",  # oldest entry of the tail (once full)
    "tail_sum",  # sum of the tail
    "block_size",  # points per recent block
    "block_fill",  # points in the current block
    "block_count",  # blocks completed
    "slots",  # seasonal slots per season (0: no seasonal channel)
    "slot_width",  # seconds per slot
    "season_t0",  # time slot 0 is centred on
    "resid_count",  # seasonal changes learned
    "resid_last",  # latest seasonal change
    "resid_noise",  # their noise unit
    "resid_noise_n",
    "resid_lo",  # their fading range
    "resid_hi",
    "alert_pos",  # next slot of the alert ring
    "short_pos",  # oldest slot of the short window's ring (once full)
    "short_fill",  # values in the short window
    "short_width",  # the short window's length in points
    "quantum",  # smallest non-zero change seen (the data's resolution; 0 before any)
    "record_rate",  # EW share of points that broke the level range
    "week_slots",  # the weekly table's slots (0: none), as slots..resid_hi for the daily
    "week_slot_width",
    "week_count",
    "week_last",
    "week_noise",
    "week_noise_n",
    "week_lo",
    "week_hi",
)
S = {name: i for i, name in enumerate(SCALARS)}

#: Bins of the calibration histogram: log2 of the deviation from -3 to 17, 4 per octave.
HIST_BINS = 80
#: Rows of the recent blocks: maxima of the mean, of -mean, of the value, of -value.
BLOCK_ROWS = 4


def fresh() -> dict[str, np.ndarray]:
    """A new, empty state."""
    return {
        "s": np.zeros(len(SCALARS)),
        "iv": np.zeros(CADENCE_INTERVALS),
        "ring": np.zeros(LOCAL_MAX_POINTS),
        "srt": np.zeros(LOCAL_MAX_POINTS),
        "tail": np.zeros(64),
        "short_ring": np.zeros(SHORT_MAX_POINTS),
        "short_srt": np.zeros(SHORT_MAX_POINTS),
        # RECENT_BLOCKS completed blocks, the current one, the maxima of the completed
        "blk": np.full((BLOCK_ROWS, RECENT_BLOCKS + 2), -np.inf),
        "hist": np.zeros(HIST_BINS),
        "slot_v": np.zeros(MAX_SLOTS),
        "slot_k": np.full(MAX_SLOTS, -np.inf),  # -inf: never written (matches no index)
        "week_v": np.zeros(WEEK_MAX_SLOTS),
        "week_k": np.full(WEEK_MAX_SLOTS, -np.inf),
        "al_t": np.full(MAX_ALERTS, -np.inf),
        "al_e": np.zeros(MAX_ALERTS),
    }


def _dump(a: np.ndarray) -> list[float | None]:
    out = a.reshape(-1).tolist()
    if not np.isfinite(a).all():
        out = [v if math.isfinite(v) else None for v in out]
    return out


def _load(values: list[float | None], missing: float) -> np.ndarray:
    if None in values:
        values = [missing if v is None else v for v in values]
    return np.asarray(values, dtype=np.float64)


def to_json(state: dict[str, np.ndarray]) -> dict[str, Any]:
    """Plain JSON of a state (non-finite entries as None, unused parts left out)."""
    s = state["s"]
    fill = int(s[S["ring_fill"]])
    slots = int(s[S["slots"]])
    week = int(s[S["week_slots"]])
    return {
        "scalars": _dump(s),
        "intervals": _dump(state["iv"][: int(s[S["intervals"]])]),
        "ring": _dump(state["ring"][:fill]),
        "short_ring": _dump(state["short_ring"][: int(s[S["short_fill"]])]),
        "tail": _dump(state["tail"][: int(s[S["tail_n"]])]),
        "blocks": _dump(state["blk"]),
        "hist": _dump(state["hist"]),
        "slot_values": _dump(state["slot_v"][:slots]),
        "slot_index": _dump(state["slot_k"][:slots]),
        "week_values": _dump(state["week_v"][:week]),
        "week_index": _dump(state["week_k"][:week]),
        "alerts": [_dump(state["al_t"]), _dump(state["al_e"])],
    }


def from_json(data: dict[str, Any]) -> dict[str, np.ndarray]:
    """The state :func:`to_json` gave."""
    state = fresh()
    scalars = _load(data["scalars"], 0.0)
    state["s"][: scalars.shape[0]] = scalars  # a state from before the weekly table: none
    for key, name, missing in (
        ("iv", "intervals", 0.0),
        ("ring", "ring", 0.0),
        ("short_ring", "short_ring", 0.0),
        ("tail", "tail", 0.0),
        ("slot_v", "slot_values", 0.0),
        ("slot_k", "slot_index", -math.inf),
        ("week_v", "week_values", 0.0),
        ("week_k", "week_index", -math.inf),
    ):
        values = _load(data.get(name, []), missing)
        state[key][: values.shape[0]] = values
    fill = len(data["ring"])
    state["srt"][:fill] = np.sort(state["ring"][:fill])
    short = len(data["short_ring"])
    state["short_srt"][:short] = np.sort(state["short_ring"][:short])
    state["blk"][:] = _load(data["blocks"], -math.inf).reshape(state["blk"].shape)
    state["hist"][:] = _load(data["hist"], 0.0)
    state["al_t"][:] = _load(data["alerts"][0], -math.inf)
    state["al_e"][:] = _load(data["alerts"][1], 0.0)
    return state
