"""Labelled anomalies: what goes wrong, injected into a :class:`~.shapes.Signal`.

Every size is in units of the series' own noise around the onset
(:meth:`Signal.typical_sigma`: the median noise standard deviation over the
24 hours centred on the onset, what a robust estimate of the recent noise
would find), so "8" means the same surprise on a request rate, a crash
count or a p99 latency, and a later incident of smaller size is smaller in
value too, whatever the time of day. A sparse count's unit is at least half
an event. Each injector edits the signal in place
and returns the :class:`Label` of what it did: the onset row (the instant
NAB's windows are centred on) and the last row it affected.

Kinds:

* ``incident``: a rise (or, with a negative size, a drop) of ``minutes``:
  a fast rise, a wobbling plateau, a decay. Several in one series make the
  recurring incidents of an error count or a latency.
* ``spike``: the same, one or two rows long.
* ``shift``: a step that stays (the new normal after a release, a client
  migration, a marketing launch); ``scale`` mode multiplies the level.
* ``variance``: the noise grows ``size`` times for ``minutes`` (a flapping
  dependency, retries).
* ``missed_peak``: one day's peak around ``hour`` does not happen (a batch
  job that did not run, a client that did not come); the onset is the first
  row where the missing peak is 3 noise units below what it should be.
* ``flatline``: the value sticks at its last reading for ``minutes`` (an
  exporter that hangs, a gauge that stops updating).
* ``ramp``: a slow rise of ``size`` over ``minutes`` (a leak, a slow
  degradation); it stays with ``persist``, else it ends with a reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.synth.shapes import DAY, Signal

#: How far an anomaly may move from its nominal place, as a fraction of the series.
JITTER = 0.01
KINDS = ("incident", "spike", "shift", "variance", "missed_peak", "flatline", "ramp")


@dataclass(frozen=True)
class Anomaly:
    """One anomaly of a series spec (see the module docstring for the kinds)."""

    kind: str
    at: float  # nominal onset, as a fraction of the series' rows
    size: float = 0.0  # noise units (a factor of the noise for ``variance``)
    minutes: float = 0.0  # duration
    hour: float | None = None  # onset at this hour UTC (``missed_peak``: the peak's centre)
    mode: str = "add"  # ``shift``: add, or scale the level
    persist: bool = False  # ``ramp``: the level stays up afterwards

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown anomaly kind {self.kind!r}")
        if not 0.0 < self.at < 1.0:
            raise ValueError(f"anomaly at {self.at}: not inside the series")
        if self.kind == "missed_peak" and self.hour is None:
            raise ValueError("a missed_peak needs the hour of its peak")


@dataclass(frozen=True)
class Label:
    """What an injected anomaly did: its onset row and its last affected row."""

    kind: str
    start: int
    end: int
    size: float


def incident(at: float, size: float, minutes: float, hour: float | None = None) -> Anomaly:
    """A rise (negative size: a drop) lasting ``minutes`` (starting at ``hour`` UTC)."""
    return Anomaly("incident", at, size, minutes, hour)


def spike(at: float, size: float, minutes: float = 0.0, hour: float | None = None) -> Anomaly:
    """A one- or two-row spike (negative size: a dip)."""
    return Anomaly("spike", at, size, minutes, hour)


def shift(at: float, size: float, mode: str = "add") -> Anomaly:
    """A level shift that becomes the new normal."""
    return Anomaly("shift", at, size, mode=mode)


def variance(at: float, factor: float, minutes: float) -> Anomaly:
    """A burst of noise ``factor`` times the usual."""
    return Anomaly("variance", at, factor, minutes)


def missed_peak(at: float, hour: float, minutes: float) -> Anomaly:
    """The daily peak centred on ``hour`` and ``minutes`` wide does not happen that day."""
    return Anomaly("missed_peak", at, hour=hour, minutes=minutes)


def flatline(at: float, minutes: float) -> Anomaly:
    """The value sticks for ``minutes``."""
    return Anomaly("flatline", at, minutes=minutes)


def ramp(at: float, size: float, minutes: float, persist: bool = False) -> Anomaly:
    """A slow rise by ``size`` noise units over ``minutes``."""
    return Anomaly("ramp", at, size, minutes, persist=persist)


def rows_of(minutes: float, cadence: float) -> int:
    """Rows covered by ``minutes`` at ``cadence`` seconds (at least one)."""
    return max(1, round(minutes * 60.0 / cadence))


def place(anomaly: Anomaly, t: np.ndarray, rng: np.random.Generator) -> int:
    """The onset row: the nominal place, moved by up to ``JITTER`` of the series.

    With an ``hour`` (other than for ``missed_peak``), the onset moves to that
    hour of the same day.
    """
    n = t.shape[0]
    row = int(round((anomaly.at + rng.uniform(-JITTER, JITTER)) * n))
    if anomaly.hour is not None and anomaly.kind != "missed_peak":
        target = float(t[row] - t[row] % DAY) + anomaly.hour * 3600.0
        row = int(np.searchsorted(t, target))
    return row


def inject(sig: Signal, anomaly: Anomaly, row: int, rng: np.random.Generator) -> Label:
    """Apply ``anomaly`` at ``row`` to ``sig`` (level and noise scale, in place)."""
    n = sig.level.shape[0]
    cadence = float(sig.t[1] - sig.t[0])
    m = rows_of(anomaly.minutes, cadence)
    if anomaly.kind == "missed_peak":
        return _missed_peak(sig, anomaly, row)
    if row + m > n - 1 or row < 1:
        raise ValueError(f"{anomaly.kind} at row {row} (+{m}) does not fit {n} rows")
    sigma = sig.typical_sigma(row)
    kind = anomaly.kind
    if kind in ("incident", "spike"):
        m = min(m, 2) if kind == "spike" else m
        before = sig.level[row : row + m].copy()
        bump = anomaly.size * sigma * _profile(m, rng)
        sig.level[row : row + m] = np.maximum(before + bump, 0.02 * before)
        return Label(kind, row, row + m - 1, anomaly.size)
    if kind == "shift":
        if anomaly.mode == "scale":
            factor = max(1.0 + anomaly.size * sigma / sig.typical_level(row), 0.05)
            sig.level[row:] *= factor
            if sig.model == "gauss":
                sig.sd[row:] *= factor
        else:
            sig.level[row:] += anomaly.size * sigma
        return Label(kind, row, row, anomaly.size)
    if kind == "variance":
        sig.sd[row : row + m] *= anomaly.size
        return Label(kind, row, row + m - 1, anomaly.size)
    if kind == "flatline":  # the values are overwritten after they are drawn (see flatten)
        return Label(kind, row, row + m - 1, 0.0)
    # ramp
    rise = anomaly.size * sigma * np.arange(1, m + 1) / m
    sig.level[row : row + m] += rise
    if anomaly.persist:
        sig.level[row + m :] += rise[-1]
    return Label(kind, row, row + m - 1, anomaly.size)


def flatten(values: np.ndarray, label: Label) -> None:
    """A flatline: rows ``start..end`` repeat the reading just before ``start``."""
    values[label.start : label.end + 1] = values[label.start - 1]


def _profile(m: int, rng: np.random.Generator) -> np.ndarray:
    """Shape of an incident of ``m`` rows, peaking at about 1."""
    if m <= 2:
        return np.ones(m)
    rise = max(1, math.ceil(0.15 * m))
    decay = math.ceil(0.25 * m) if m >= 6 else 0
    p = np.ones(m)
    p[:rise] = np.arange(1, rise + 1) / rise
    plateau = slice(rise, m - decay)
    p[plateau] *= rng.uniform(0.85, 1.1, m - decay - rise)
    if decay:
        p[m - decay :] = np.linspace(0.8, 0.15, decay)
    return p


def _missed_peak(sig: Signal, anomaly: Anomaly, row: int) -> Label:
    assert anomaly.hour is not None
    midnight = float(sig.t[row] - sig.t[row] % DAY)
    centre = midnight + anomaly.hour * 3600.0
    half = anomaly.minutes * 30.0
    a, b = np.searchsorted(sig.t, [centre - half, centre + half])
    b = min(int(b), sig.t.shape[0] - 1)
    a = int(a)
    sigmas = sig.sigmas(a, b + 1)
    before = sig.level[a : b + 1].copy()
    flat = np.linspace(before[0], before[-1], b - a + 1)
    deficit = before - flat
    missing = np.flatnonzero(deficit > 3.0 * sigmas)
    if missing.size == 0:
        raise ValueError(f"missed_peak at {anomaly.hour}h: no peak to miss")
    sig.level[a : b + 1] = np.minimum(before, flat)
    return Label("missed_peak", a + int(missing[0]), a + int(missing[-1]), 0.0)
