"""Recursions the streaming detectors share, vectorised: EWMA mean and variance."""

from __future__ import annotations

import numpy as np

# longest accumulated decay (in e-folds) handled by one closed-form block; keeps
# the block's scaling factors within e^30, far from overflow and from rounding
_BLOCK_LOG_SPAN = 30.0


def linear_recursion(beta: np.ndarray | float, u: np.ndarray, y0: float) -> np.ndarray:
    """Vectorised ``y[t] = beta[t] * y[t-1] + u[t]`` with ``y[-1] = y0``.

    ``beta`` in [0, 1]; ``beta == 0`` restarts the recursion (``y = u``). Within
    a block, ``y[t] = P[t] * (y_start + cumsum(u / P)[t])`` with ``P`` the
    running product of ``beta``; blocks end before ``P`` falls below e^-30 so the
    result matches the step-by-step loop to ~1e-13 relative.
    """
    u = np.asarray(u, dtype=np.float64)
    n = u.shape[0]
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    beta_arr = np.broadcast_to(np.asarray(beta, dtype=np.float64), u.shape)
    restart = beta_arr <= 0.0
    log_beta = np.log(np.where(restart, 1.0, beta_arr))
    cum = np.cumsum(log_beta)
    neg_cum = -cum  # non-decreasing, searchable
    restarts = np.flatnonzero(restart)
    next_restart = 0
    y_prev = float(y0)
    start = 0
    while start < n:
        while next_restart < restarts.size and restarts[next_restart] < start:
            next_restart += 1
        if next_restart < restarts.size and restarts[next_restart] == start:
            y_prev = 0.0
            next_restart += 1
        base = float(cum[start - 1]) if start > 0 else 0.0
        end = int(np.searchsorted(neg_cum, _BLOCK_LOG_SPAN - base, side="right"))
        if next_restart < restarts.size:
            end = min(end, int(restarts[next_restart]))
        end = min(max(end, start + 1), n)
        growth = np.exp(cum[start:end] - base)
        block = growth * (y_prev + np.cumsum(u[start:end] / growth))
        out[start:end] = block
        y_prev = float(block[-1])
        start = end
    return out


def adaptive_alphas(alpha: float, count0: int, n: int) -> np.ndarray:
    """Smoothing factor of the 1st..nth new point: ``max(alpha, 1 / count)``.

    Early on this is an equal-weight running mean (no start-up bias); once
    ``1 / count`` falls below ``alpha`` it becomes a plain EWMA.
    """
    counts = np.arange(count0 + 1, count0 + n + 1, dtype=np.float64)
    return np.maximum(alpha, 1.0 / counts)


def ewm_mean_var(
    x: np.ndarray, alphas: np.ndarray, mean0: float, var0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exponentially weighted mean and variance, vectorised.

    West's update per point: ``d = x - m``, ``m += a d``,
    ``v = (1 - a)(v + a d^2)``; with ``a = 1 / count`` it is Welford's running
    mean and (population) variance. Returns the mean and variance *before* each
    point (what that point is scored against) and after it.
    """
    betas = 1.0 - alphas
    mean_after = linear_recursion(betas, alphas * x, mean0)
    mean_before = np.concatenate(([mean0], mean_after[:-1]))
    dev = x - mean_before
    var_after = linear_recursion(betas, betas * alphas * dev * dev, var0)
    var_before = np.concatenate(([var0], var_after[:-1]))
    return mean_before, var_before, mean_after, var_after
