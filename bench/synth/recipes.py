"""Recipes: what a metric looks like when nothing is wrong, as a :class:`~.shapes.Signal`.

Every recipe takes the file's generator and the rows' epoch seconds, and
keyword parameters from the catalogue (:mod:`.corpus`). Some carry benign,
recurring shapes that an operator considers normal (a nightly batch job, an
hourly cron, log rotation, restarts at deploys); they are never labelled.
"""

from __future__ import annotations

import numpy as np

from bench.synth.shapes import (
    DAY,
    HOUR,
    Signal,
    ar1,
    daily,
    daily_window,
    day_to_day,
    growth_factor,
    hour_of_day,
    n_rows,
    periodic,
    rows_in,
    wander,
    weekday,
    weekly,
)


def traffic(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    lo: float,
    hi: float,
    peak: float = 15.0,
    weekend: float = 0.7,
    cv: float = 0.03,
    growth: float = 0.0,
    cron: float = 0.0,
    batch: float = 0.0,
    batch_hour: float = 2.0,
) -> Signal:
    """Request rate, bandwidth, users: a daily and weekly cycle, multiplicative noise.

    ``cron`` adds a burst at the top of every hour (health checks, scheduled
    clients) and ``batch`` a nightly hour-long transfer (a backup), both benign.
    """
    shape = lo + (hi - lo) * daily(t, peak) * weekly(t, weekend) * day_to_day(t, rng, 0.05)
    level = (
        shape * growth_factor(t, growth) * (1.0 + 0.02 * wander(rng, n_rows(t), rows_in(t, DAY)))
    )
    if cron:  # health checks and scheduled clients at the top of every hour
        level = level * (1.0 + cron * periodic(t, HOUR, 120.0))
    if batch:
        level = level + batch * hi * daily_window(t, batch_hour, 60.0)
    return Signal(t, level, cv * level, ar1(rng, n_rows(t), 0.6), "gauss")


def counts(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    lo: float,
    hi: float,
    peak: float = 15.0,
    weekend: float = 0.8,
    overdispersion: float = 0.15,
) -> Signal:
    """Event counts per row (errors, crashes, mentions): Poisson around a cycle; may be sparse."""
    level = lo + (hi - lo) * daily(t, peak) * weekly(t, weekend) * day_to_day(t, rng, 0.1)
    sd = np.full(n_rows(t), overdispersion)
    return Signal(t, level, sd, ar1(rng, n_rows(t), 0.5), "poisson")


def ratio(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    pct: float,
    volume: float,
    peak: float = 15.0,
    weekend: float = 0.7,
    overdispersion: float = 0.2,
) -> Signal:
    """An error percentage of ``volume`` requests per row at the daily peak."""
    requests = volume * (0.15 + 0.85 * daily(t, peak) * weekly(t, weekend))
    requests = np.maximum(np.round(requests * day_to_day(t, rng, 0.05)), 1.0)
    level = pct * (1.0 + 0.1 * wander(rng, n_rows(t), rows_in(t, 2.0 * DAY)))
    sd = np.full(n_rows(t), overdispersion)
    return Signal(t, level, sd, ar1(rng, n_rows(t), 0.4), "ratio", requests)


def latency(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    base: float,
    load: float = 0.4,
    peak: float = 15.0,
    weekend: float = 0.8,
    sd: float = 0.12,
    tail: float = 0.0,
    deploys: float = 0.0,
    growth: float = 0.0,
) -> Signal:
    """A latency percentile: rises with load, lognormal noise, optional Pareto tail blips.

    ``tail`` is the share of rows hit by a slow request (a benign one-row blip
    of Pareto size); ``deploys`` a benign rise during the 15:00 weekday deploy.
    """
    n = n_rows(t)
    level = base * (1.0 + load * daily(t, peak) * weekly(t, weekend) * day_to_day(t, rng, 0.08))
    level = level * np.exp(0.05 * wander(rng, n, rows_in(t, DAY))) * growth_factor(t, growth)
    if deploys:
        level = level * (1.0 + deploys * daily_window(t, 15.0, 10.0) * (weekday(t) < 5))
    if tail:
        blips = rng.random(n) < tail
        level = level * np.where(blips, 1.0 + 0.3 * rng.pareto(3.0, n), 1.0)
    return Signal(t, level, np.full(n, sd), ar1(rng, n, 0.5), "lognormal")


def utilisation(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    lo: float,
    hi: float,
    peak: float = 15.0,
    weekend: float = 0.75,
    sd: float = 1.5,
    batch: float = 0.0,
    batch_hour: float = 2.0,
) -> Signal:
    """CPU or load in percent: follows traffic; ``batch`` adds a nightly job (benign)."""
    n = n_rows(t)
    level = lo + (hi - lo) * daily(t, peak) * weekly(t, weekend) * day_to_day(t, rng, 0.06)
    level = level + 0.75 * sd * wander(rng, n, rows_in(t, 6.0 * HOUR))
    if batch:
        level = level + batch * daily_window(t, batch_hour, 30.0)
    return Signal(t, level, np.full(n, sd), ar1(rng, n, 0.7), "gauss")


def memory(
    rng: np.random.Generator, t: np.ndarray, *, base: float, warm: float, sd: float
) -> Signal:
    """Resident memory: restarts at the weekday 15:00 deploy, then warms its caches."""
    n = n_rows(t)
    since_deploy = t % DAY - 15.0 * HOUR
    deploy = (weekday(t) < 5) & (since_deploy >= 0.0) & (since_deploy < float(t[1] - t[0]))
    starts = np.maximum.accumulate(np.where(deploy, t, t[0] - 3.0 * DAY))
    age = t - starts
    level = base + warm * (1.0 - np.exp(-age / (8.0 * HOUR)))
    level = level + 0.1 * warm * wander(rng, n, rows_in(t, 12.0 * HOUR))
    return Signal(t, level, np.full(n, sd), ar1(rng, n, 0.8), "gauss")


def disk(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    start: float,
    per_day: float,
    rotated: float,
    sd: float = 0.02,
) -> Signal:
    """Disk usage in percent: fills through the day, log rotation at 00:00 frees ``rotated``."""
    n = n_rows(t)
    days = (t - t[0]) / DAY
    level = start + per_day * days - rotated * np.floor(days + 1e-9)
    level = level + 0.05 * wander(rng, n, rows_in(t, DAY))
    return Signal(t, level, np.full(n, sd), ar1(rng, n, 0.5), "gauss")


def queue(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    base: float,
    burst: float,
    every_s: float = 900.0,
    drain_s: float = 240.0,
    peak: float = 15.0,
) -> Signal:
    """Queue depth: a few messages, and a scheduled enqueue every ``every_s`` that drains."""
    level = base * (0.3 + 0.7 * daily(t, peak)) + burst * periodic(t, every_s, drain_s)
    return Signal(t, level, np.full(n_rows(t), 0.1), ar1(rng, n_rows(t), 0.5), "poisson")


def lag(
    rng: np.random.Generator,
    t: np.ndarray,
    *,
    base: float,
    swing: float,
    sd: float,
    batch: float = 0.0,
    batch_hour: float = 1.0,
) -> Signal:
    """Consumer lag or backlog: a wandering level, a nightly batch that the consumers drain."""
    n = n_rows(t)
    level = base + swing * wander(rng, n, rows_in(t, 6.0 * HOUR)) + swing * daily(t, 14.0)
    if batch:
        since = (hour_of_day(t) - batch_hour) % 24.0
        level = level + batch * np.where(since < 3.0, np.exp(-since / 0.8), 0.0)
    return Signal(t, np.maximum(level, 0.0), np.full(n, sd), ar1(rng, n, 0.7), "gauss")
