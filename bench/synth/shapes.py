"""Building blocks of the synthetic corpus: the :class:`Signal` and the shapes recipes use.

A recipe (:mod:`.recipes`) turns epoch seconds into a :class:`Signal`: the
expected value of every row (``level``), an autocorrelated unit noise and its
scale, and the observation model that turns them into values. Anomalies
(:mod:`.anomalies`) edit the level and the noise scale before
:meth:`Signal.compose` draws the values, so an incident on a count series is
drawn as counts, and a variance burst on a latency series stays heavy-tailed.

Observation models:

* ``gauss``: ``level + sd * noise`` (``sd`` in value units);
* ``lognormal``: ``level * exp(sd * noise)`` (``sd`` in log units), the
  multiplicative, right-skewed noise of latency percentiles;
* ``poisson``: counts drawn with mean ``level * exp(sd * noise)`` (``sd`` is
  the overdispersion: events come in clumps);
* ``ratio``: a percentage ``100 * errors / volume`` where ``errors`` is a
  Poisson count of mean ``volume * level / 100`` (``volume`` requests per row).
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


def growth_factor(t: np.ndarray, per_30_days: float) -> np.ndarray:
    """A linear growth: 1 at the first row, ``1 + per_30_days`` 30 days later."""
    return 1.0 + per_30_days * (t - t[0]) / (30.0 * DAY)


def n_rows(t: np.ndarray) -> int:
    """Rows of the series."""
    return int(t.shape[0])


def rows_in(t: np.ndarray, seconds: float) -> float:
    """Rows in ``seconds`` at the series' cadence (at least 2)."""
    return max(seconds / float(t[1] - t[0]), 2.0)
