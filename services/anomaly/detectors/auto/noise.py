"""Noise units of ``auto``: EW mean absolute change between consecutive values.

The k-th sample of a row is weighted ``max(1 / memory, 1 / k)``: the plain
running mean of the first ``memory`` samples (no start-up bias), an EWMA
with ``alpha = 1 / memory`` after. Both are one cumulative sum in closed form,
``y[t] = (y0 + sum_{j<t} gain[j] x[j]) * decay[t]``, in blocks of at most
``_BLOCK_LOG_SPAN`` e-folds so the scaling factors stay far from overflow.
"""

from __future__ import annotations

import math

import numpy as np

from .scratch import scratch

#: Longest accumulated decay (e-folds) of one closed-form EWMA block.
_BLOCK_LOG_SPAN = 30.0

#: One row of the kernel: (mean before, sample count, first point ever, samples in the batch).
Row = tuple[float, int, bool, int]

_EW_VECTORS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def ew_span(memory: int) -> int:
    """Points of one closed-form EWMA block (at most ``_BLOCK_LOG_SPAN`` e-folds)."""
    return max(1, int(_BLOCK_LOG_SPAN / -math.log1p(-1.0 / memory)))


def ew_vectors(memory: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``gain[t] = alpha * beta**-(t+1)`` and ``decay[t] = beta**t`` (at least ``n``, ``n + 1``).

    With them ``y[t] = (1 - alpha) y[t-1] + alpha x[t]`` is one cumulative sum:
    ``y[t] = (y0 + sum_{j<=t} gain[j] x[j]) * decay[t + 1]``.
    """
    cached = _EW_VECTORS.get(memory)
    if cached is not None and cached[0].shape[0] >= n:
        return cached
    size = min(ew_span(memory), max(n, 4096))
    beta = 1.0 - 1.0 / memory
    steps = np.arange(size + 1, dtype=np.float64)
    decay = np.power(beta, steps)
    gain = (1.0 / memory) * np.power(beta, -steps[1:])
    gain.setflags(write=False)
    decay.setflags(write=False)
    _EW_VECTORS[memory] = (gain, decay)
    return gain, decay


def ramp_vectors(
    count0: int, first: bool, memory: int, gain: np.ndarray, gains: np.ndarray, decays: np.ndarray
) -> None:
    """Gains and decays (see :func:`noise_units`) of a row still in its running-mean phase.

    Sample ``k`` (``k = count0 + 1 + t`` at position ``t``; ``k = t`` for the
    very first points, whose position 0 is no sample) has weight ``1 / k``
    up to ``memory``, then ``1 / memory``. With ``Q(k) = k`` up to ``memory``
    and ``memory * beta**-(k - memory)`` after, ``y_k Q(k)`` is the running
    sum of ``q(k) x_k`` (``q = 1``, then ``Q / memory``), relative to
    ``Q(count0)``. ``gain`` is the steady ``alpha * beta**-(t+1)`` vector,
    ``decay`` below its reciprocal up to ``alpha``.
    """
    n = gains.shape[0]
    k0 = 0 if first else count0 + 1
    ramp = min(n, max(0, memory - k0 + 1))  # positions with k <= memory
    scale = float(max(count0, 1))
    gains[:ramp] = 1.0 / scale
    decays[0] = 1.0
    np.divide(scale, np.arange(k0, k0 + ramp, dtype=np.float64), out=decays[1 : ramp + 1])
    if ramp < n:
        # k = memory + j + 1: Q = memory * beta**-(j+1) = memory**2 * gain[j]
        np.multiply(gain[: n - ramp], memory / scale, out=gains[ramp:])
        _, decay = ew_vectors(memory, n - ramp)
        np.multiply(decay[1 : n - ramp + 1], scale / memory, out=decays[ramp + 1 :])
    if first:
        gains[0] = 0.0
        decays[1] = scale


def ew_mean_before(
    x: np.ndarray, mean0: float, count0: int, memory: int, *, first_ever: bool
) -> tuple[np.ndarray, float, int]:
    """EW mean of the samples before each point (a running mean at first).

    The k-th sample is weighted ``max(1 / memory, 1 / k)``: the plain running
    mean of the first ``memory`` samples (a cumulative sum), an EWMA after
    (closed-form blocks, the arithmetic of :func:`noise_units`). With
    ``first_ever``, ``x[0]`` is not a sample (the very first point has no
    change before it). Returns the mean before each point, the mean after the
    batch and the new sample count.
    """
    n = x.shape[0]
    after = np.empty(n)
    start = 0
    count = count0
    mean = mean0
    if first_ever:
        after[0] = mean0
        start = 1
    if count < memory - 1 and start < n:
        # running mean of the first samples: mean_k = sum / k (k = memory is also the EWMA)
        stop = min(n, start + memory - 1 - count)
        counts = np.arange(count + 1, count + 1 + stop - start, dtype=np.float64)
        after[start:stop] = (mean * count + np.cumsum(x[start:stop])) / counts
        count += stop - start
        mean = float(after[stop - 1])
        start = stop
    span = ew_span(memory)
    while start < n:
        length = min(n - start, span)
        gain, decay = ew_vectors(memory, length)
        acc = np.empty(length + 1)
        acc[0] = mean
        np.multiply(x[start : start + length], gain[:length], out=acc[1:])
        np.cumsum(acc, out=acc)
        np.multiply(acc[1:], decay[1 : length + 1], out=after[start : start + length])
        mean = float(after[start + length - 1])
        count += length
        start += length
    before = np.empty(n)
    before[0] = mean0
    before[1:] = after[:-1]
    return before, mean, count


def noise_units(
    acc: np.ndarray, rows: list[Row], memory: int
) -> tuple[np.ndarray, list[tuple[float, int]]]:
    """Noise unit before each point of each row, and (mean, sample count) after.

    ``acc[:, 1:]`` holds the absolute changes (used as scratch). Row 0: the
    value's changes (all points); row 1, if any: those of the seasonal
    change (its first ``samples`` entries; the rest is padding). All rows
    go through one cumulative sum when the batch fits in one closed-form
    block, else row by row, block by block.
    """
    n_rows, n = acc.shape[0], acc.shape[1] - 1
    if n > ew_span(memory):
        # longer than one closed-form block: row by row, block by block
        noise = np.empty((n_rows, n))
        after = []
        for r, (mean0, count0, first, length) in enumerate(rows):
            before, mean, count = ew_mean_before(
                acc[r, 1 : length + 1], mean0, count0, memory, first_ever=first
            )
            noise[r, :length] = before
            noise[r, length:] = mean
            after.append((mean, count))
        return noise, after
    gain, decay = ew_vectors(memory, n)
    for r, c in enumerate(rows):
        acc[r, 0] = c[0]
    if all(c[1] >= memory - 1 for c in rows):
        gains, decays = gain[:n], decay[: n + 1]  # the EWMA regime (also at sample `memory`)
    else:
        gains, decays = scratch("gains", (n_rows, n)), scratch("decays", (n_rows, n + 1))
        for r, (_, count0, first, _) in enumerate(rows):
            if count0 >= memory - 1:
                gains[r], decays[r] = gain[:n], decay[: n + 1]
            else:
                ramp_vectors(count0, first, memory, gain, gains[r], decays[r])
    np.multiply(acc[:, 1:], gains, out=acc[:, 1:])
    np.cumsum(acc, axis=1, out=acc)
    after = []
    for r, (_, count0, first, length) in enumerate(rows):
        d = decays[length] if decays.ndim == 1 else decays[r, length]
        after.append((float(acc[r, length] * d), count0 + length - first))
    noise = acc[:, :n]
    noise *= decays[..., :n]
    return noise, after
