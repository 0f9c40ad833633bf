"""Base signals of the synthetic corpus: what a metric looks like when nothing is wrong.

A recipe turns epoch seconds into a :class:`Signal`: the expected value of
every row (``level``), an autocorrelated unit noise and its scale, and the
observation model that turns them into values. Anomalies (:mod:`.anomalies`)
edit the level and the noise scale before :meth:`Signal.compose` draws the
values, so an incident on a count series is drawn as counts, and a variance
burst on a latency series stays heavy-tailed.

Observation models:

* ``gauss``: ``level + sd * noise`` (``sd`` in value units);
* ``lognormal``: ``level * exp(sd * noise)`` (``sd`` in log units), the
  multiplicative, right-skewed noise of latency percentiles;
* ``poisson``: counts drawn with mean ``level * exp(sd * noise)`` (``sd`` is
  the overdispersion: events come in clumps);
* ``ratio``: a percentage ``100 * errors / volume`` where ``errors`` is a
  Poisson count of mean ``volume * level / 100`` (``volume`` requests per row).

Every recipe may carry benign, recurring shapes that an operator considers
normal (a nightly batch job, an hourly cron, log rotation, restarts at
deploys); they are never labelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = 86400.0
HOUR = 3600.0
#: Smallest Poisson mean used for a noise unit: a sparse count's unit is sqrt(0.25) events.
POISSON_FLOOR = 0.25


@dataclass
class Signal:
    """A series before its values are drawn (arrays are edited in place by anomalies)."""

    t: np.ndarray  # epoch seconds
    level: np.ndarray
    sd: np.ndarray
    noise: np.ndarray  # unit variance, autocorrelated
    model: str
    volume: np.ndarray | None = None

    def sigma(self, i: int) -> float:
        """Noise standard deviation of row ``i`` in value units."""
        return float(self.sigmas(i, i + 1)[0])

    def sigmas(self, lo: int, hi: int) -> np.ndarray:
        """Noise standard deviations of rows ``lo..hi-1`` in value units."""
        level, sd = self.level[lo:hi], self.sd[lo:hi]
        if self.model == "gauss":
            return sd.copy()
        if self.model == "lognormal":
            return level * sd
        if self.model == "poisson":  # a sparse count's unit is at least half an event
            rate = np.maximum(level, POISSON_FLOOR)
            return np.sqrt(rate + (rate * sd) ** 2)
        assert self.volume is not None
        volume = self.volume[lo:hi]
        mean = np.maximum(volume * level / 100.0, POISSON_FLOOR)
        return np.hypot(100.0 * np.sqrt(mean) / volume, level * sd)

    def typical_sigma(self, i: int) -> float:
        """The noise unit of anomaly sizes: the median noise of the day centred on row ``i``."""
        half = int(DAY / 2 / float(self.t[1] - self.t[0]))
        return float(np.median(self.sigmas(max(i - half, 0), i + half + 1)))

    def typical_level(self, i: int) -> float:
        """The median level of the day centred on row ``i``."""
        half = int(DAY / 2 / float(self.t[1] - self.t[0]))
        return float(np.median(self.level[max(i - half, 0) : i + half + 1]))

    def compose(self, rng: np.random.Generator) -> np.ndarray:
        """Draw the values."""
        if self.model == "gauss":
            return self.level + self.sd * self.noise
        if self.model == "lognormal":
            return self.level * np.exp(self.sd * self.noise)
        mean = np.maximum(self.level, 0.0) * np.exp(self.sd * self.noise - 0.5 * self.sd**2)
        if self.model == "poisson":
            return rng.poisson(mean).astype(np.float64)
        assert self.volume is not None
        return 100.0 * rng.poisson(self.volume * mean / 100.0) / self.volume


# ---------------------------------------------------------------- building blocks


def hour_of_day(t: np.ndarray) -> np.ndarray:
    """Hours since midnight UTC."""
    return (t % DAY) / HOUR


def weekday(t: np.ndarray) -> np.ndarray:
    """Day of the week, Monday = 0 (1970-01-01 was a Thursday)."""
    return ((t // DAY).astype(np.int64) + 3) % 7


def daily(t: np.ndarray, peak: float, power: float = 1.5) -> np.ndarray:
    """A daily cycle in [0, 1], 1 at ``peak`` hours UTC; ``power`` > 1 narrows the peak."""
    return (0.5 * (1.0 + np.cos(2.0 * np.pi * (hour_of_day(t) - peak) / 24.0))) ** power


def weekly(t: np.ndarray, weekend: float) -> np.ndarray:
    """1 on weekdays, ``weekend`` on Saturdays and Sundays."""
    return np.where(weekday(t) >= 5, weekend, 1.0)


def day_to_day(t: np.ndarray, rng: np.random.Generator, cv: float) -> np.ndarray:
    """A smooth multiplier that differs from day to day (no two days are alike)."""
    days = (t - t[0]) / DAY
    knots = np.arange(-1.0, np.ceil(days[-1]) + 2.0)
    return np.interp(days, knots + 0.5, 1.0 + cv * rng.standard_normal(knots.size))


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """AR(1) noise of unit variance: ``x[i] = phi x[i-1] + sqrt(1 - phi^2) e[i]``."""
    e = rng.standard_normal(n) * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = rng.standard_normal()
    for i in range(n):
        x = phi * x + e[i]
        out[i] = x
    return out


def wander(rng: np.random.Generator, n: int, rows: float) -> np.ndarray:
    """A slow random walk pulled back to 0 over about ``rows`` rows (unit variance)."""
    return ar1(rng, n, 1.0 - 1.0 / rows)


def daily_window(t: np.ndarray, hour: float, minutes: float) -> np.ndarray:
    """1 during ``minutes`` from ``hour`` every day, with soft edges (a scheduled job)."""
    since = (hour_of_day(t) - hour) % 24.0 * 60.0
    return np.clip(np.minimum(since, minutes - since) / max(minutes * 0.15, 1.0), 0.0, 1.0)


def periodic(t: np.ndarray, period_s: float, decay_s: float) -> np.ndarray:
    """1 at every multiple of ``period_s`` and decaying over ``decay_s`` (cron bursts)."""
    return np.exp(-(t % period_s) / decay_s)


def _growth(t: np.ndarray, per_30_days: float) -> np.ndarray:
    return 1.0 + per_30_days * (t - t[0]) / (30.0 * DAY)


def _n(t: np.ndarray) -> int:
    return int(t.shape[0])


def _rows(t: np.ndarray, seconds: float) -> float:
    return max(seconds / float(t[1] - t[0]), 2.0)


# ---------------------------------------------------------------- recipes


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
    level = shape * _growth(t, growth) * (1.0 + 0.02 * wander(rng, _n(t), _rows(t, DAY)))
    if cron:  # health checks and scheduled clients at the top of every hour
        level = level * (1.0 + cron * periodic(t, HOUR, 120.0))
    if batch:
        level = level + batch * hi * daily_window(t, batch_hour, 60.0)
    return Signal(t, level, cv * level, ar1(rng, _n(t), 0.6), "gauss")


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
    sd = np.full(_n(t), overdispersion)
    return Signal(t, level, sd, ar1(rng, _n(t), 0.5), "poisson")


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
    level = pct * (1.0 + 0.1 * wander(rng, _n(t), _rows(t, 2.0 * DAY)))
    sd = np.full(_n(t), overdispersion)
    return Signal(t, level, sd, ar1(rng, _n(t), 0.4), "ratio", requests)


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
    n = _n(t)
    level = base * (1.0 + load * daily(t, peak) * weekly(t, weekend) * day_to_day(t, rng, 0.08))
    level = level * np.exp(0.05 * wander(rng, n, _rows(t, DAY))) * _growth(t, growth)
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
    n = _n(t)
    level = lo + (hi - lo) * daily(t, peak) * weekly(t, weekend) * day_to_day(t, rng, 0.06)
    level = level + 0.75 * sd * wander(rng, n, _rows(t, 6.0 * HOUR))
    if batch:
        level = level + batch * daily_window(t, batch_hour, 30.0)
    return Signal(t, level, np.full(n, sd), ar1(rng, n, 0.7), "gauss")


def memory(
    rng: np.random.Generator, t: np.ndarray, *, base: float, warm: float, sd: float
) -> Signal:
    """Resident memory: restarts at the weekday 15:00 deploy, then warms its caches."""
    n = _n(t)
    since_deploy = t % DAY - 15.0 * HOUR
    deploy = (weekday(t) < 5) & (since_deploy >= 0.0) & (since_deploy < float(t[1] - t[0]))
    starts = np.maximum.accumulate(np.where(deploy, t, t[0] - 3.0 * DAY))
    age = t - starts
    level = base + warm * (1.0 - np.exp(-age / (8.0 * HOUR)))
    level = level + 0.1 * warm * wander(rng, n, _rows(t, 12.0 * HOUR))
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
    n = _n(t)
    days = (t - t[0]) / DAY
    level = start + per_day * days - rotated * np.floor(days + 1e-9)
    level = level + 0.05 * wander(rng, n, _rows(t, DAY))
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
    return Signal(t, level, np.full(_n(t), 0.1), ar1(rng, _n(t), 0.5), "poisson")


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
    n = _n(t)
    level = base + swing * wander(rng, n, _rows(t, 6.0 * HOUR)) + swing * daily(t, 14.0)
    if batch:
        since = (hour_of_day(t) - batch_hour) % 24.0
        level = level + batch * np.where(since < 3.0, np.exp(-since / 0.8), 0.0)
    return Signal(t, np.maximum(level, 0.0), np.full(n, sd), ar1(rng, n, 0.7), "gauss")
