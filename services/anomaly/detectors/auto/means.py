"""The mean channel of ``auto``: the mean of the latest ``mean_window`` values.

Sums are taken relative to the oldest value of the window so that large
numbers keep their precision: full windows by a direct convolution (prefix
sums for windows longer than ``_CONVOLVE_MAX``), the short windows near the
start of a series by prefix sums.
"""

from __future__ import annotations

import math

import numpy as np

from .scratch import scratch

#: Longest mean window summed by a direct convolution (longer: prefix sums).
_CONVOLVE_MAX = 64

_ONES: dict[int, np.ndarray] = {}


def _ones(window: int) -> np.ndarray:
    ones = _ONES.get(window)
    if ones is None:
        ones = _ONES.setdefault(window, np.ones(window))
    return ones


def rolling_means(seq: np.ndarray, start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the latest ``window`` values ending at each of ``seq[start:]``, and before it.

    ``seq`` is the kept tail followed by the batch; near the start of a series
    the windows are shorter (the one before the very first value is empty:
    NaN).
    """
    ref = seq[0]
    total = seq.shape[0]
    n = total - start
    rel = np.subtract(seq, ref, out=scratch("means", (total,)))
    out = np.empty(n + 1)  # windows ending before seq[start], ..., after seq[-1]
    full = max(start, window)  # first end of a full window
    if total >= full:
        if window <= _CONVOLVE_MAX:
            sums = np.convolve(rel[full - window :], _ones(window), "valid")
        else:
            cs = np.cumsum(rel[full - window :])
            sums = np.empty(total - full + 1)
            sums[0] = cs[window - 1]
            np.subtract(cs[window:], cs[: total - full], out=sums[1:])
        np.divide(sums, window, out=out[full - start :])
    short = min(full, total + 1) - start  # windows ending at start .. full - 1
    if short > 0:
        ends = np.arange(start, start + short, dtype=np.float64)
        cs = np.cumsum(rel[: start + short - 1]) if start + short > 1 else rel[:0]
        head = out[:short]
        if start == 0:
            head[0] = np.nan
            head[1:] = cs / ends[1:]
        else:
            head[:] = cs[start - 1 :] / ends
    out += ref
    return out[1:], out[:-1]


def learn_means(
    tail: np.ndarray, vs: np.ndarray, window: int, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean at each point into ``out``; the mean before each point, and the new tail.

    ``tail`` holds the latest (at most ``window``) values learned.
    """
    w = window
    n = vs.shape[0]
    if tail.shape[0] == w and w <= _CONVOLVE_MAX:
        # the common case of rolling_means: full windows, relative to the oldest value
        ref = tail[0]
        rel = scratch("seq", (w + n,))
        np.subtract(tail, ref, out=rel[:w])
        np.subtract(vs, ref, out=rel[w:])
        sums = np.convolve(rel, _ones(w), "valid")
        sums /= w
        sums += ref
        out[:] = sums[1:]
        new_tail = vs[n - w :].copy() if n >= w else np.concatenate((tail[n:], vs))
        return sums[:-1], new_tail
    seq = np.concatenate((tail, vs))
    out[:], expected = rolling_means(seq, tail.shape[0], w)
    return expected, seq[max(0, seq.shape[0] - w) :].copy()


def peek_means(tail: np.ndarray, vs: np.ndarray, window: int) -> tuple[np.ndarray, float]:
    """Mean each point alone would make with the tail, and the mean before it.

    The arithmetic of :func:`rolling_means` for one more point.
    """
    w = window
    if not tail.shape[0]:
        return vs.copy(), math.nan
    ref = tail[0]
    inner = tail[max(0, tail.shape[0] - (w - 1)) :] - ref
    total = np.cumsum(inner)[-1] if inner.shape[0] else 0.0
    if tail.shape[0] >= w and w <= _CONVOLVE_MAX:
        means = (total + (vs - ref)) / w + ref
        expected_value = float(np.sum(tail - ref) / w + ref)
    else:
        means = (total + (vs - ref)) / (inner.shape[0] + 1) + ref
        expected_value = float(np.cumsum(tail - ref)[-1] / tail.shape[0] + ref)
    return means, expected_value
