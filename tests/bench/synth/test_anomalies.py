"""The injectors: sizes in noise units of the day, and what each kind does to a signal."""

from __future__ import annotations

import numpy as np
import pytest

from bench.synth import shapes
from bench.synth.anomalies import (
    Anomaly,
    incident,
    inject,
    missed_peak,
    place,
    ramp,
    rows_of,
    shift,
    variance,
)

START = float(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))


def flat(n: int = 2880, cadence: int = 300, model: str = "gauss") -> shapes.Signal:
    t = START + cadence * np.arange(n, dtype=np.float64)
    return shapes.Signal(t, np.full(n, 100.0), np.full(n, 2.0), np.zeros(n), model)


def daily(n: int = 2880) -> shapes.Signal:
    t = START + 300 * np.arange(n, dtype=np.float64)
    level = 100.0 + 400.0 * shapes.daily(t, peak=15.0)
    return shapes.Signal(t, level, np.full(n, 5.0), np.zeros(n), "gauss")


def test_incident_rises_by_its_size_in_noise_units() -> None:
    sig, rng = flat(), np.random.default_rng(0)
    lab = inject(sig, incident(0.5, 8, 120), 1000, rng)
    assert (lab.start, lab.end) == (1000, 1023)  # 120 minutes of 5-minute rows
    bump = sig.level - 100.0
    assert np.all(bump[:1000] == 0) and np.all(bump[1024:] == 0)
    assert 0.85 * 16 <= bump[1000:1024].max() <= 1.1 * 16
    assert bump[1000] < bump[1005]  # a rise, not a step


def test_a_smaller_size_is_smaller_in_value_whatever_the_hour() -> None:
    sig, rng = daily(), np.random.default_rng(0)
    night = int(3 * 12)  # 03:00 on the first day
    noon = 288 + 15 * 12  # 15:00 on the second day
    first = inject(sig, incident(0.5, 4, 30), noon, rng)
    second = inject(sig, incident(0.5, 3, 30), night + 2 * 288, rng)
    big = (sig.level - daily().level)[first.start : first.end + 1].max()
    small = (sig.level - daily().level)[second.start : second.end + 1].max()
    assert big > small > 0


def test_negative_incident_drops_but_stays_positive() -> None:
    sig = flat()
    inject(sig, incident(0.5, -100, 60), 1000, np.random.default_rng(0))
    assert sig.level[1000:1012].min() == pytest.approx(2.0)  # 2 % of the level


def test_shift_stays() -> None:
    sig = flat()
    inject(sig, shift(0.5, 5), 1000, np.random.default_rng(0))
    assert np.all(sig.level[1000:] == 110.0) and np.all(sig.level[:1000] == 100.0)
    scaled = flat()
    inject(scaled, shift(0.5, 5, "scale"), 1000, np.random.default_rng(0))
    assert np.all(scaled.level[1000:] == pytest.approx(110.0))
    assert np.all(scaled.sd[1000:] == pytest.approx(2.2))  # gauss noise scales with it


def test_variance_burst_only_changes_the_noise() -> None:
    sig = flat()
    lab = inject(sig, variance(0.5, 4, 60), 1000, np.random.default_rng(0))
    assert np.all(sig.level == 100.0)
    assert np.all(sig.sd[1000:1012] == 8.0) and sig.sd[1012] == 2.0 and lab.end == 1011


def test_ramp_persists_or_resets() -> None:
    sig = flat()
    inject(sig, ramp(0.5, 10, 600), 1000, np.random.default_rng(0))
    assert np.all(np.diff(sig.level[1000:1120]) > 0) and sig.level[1119] == pytest.approx(120.0)
    assert sig.level[1120] == 100.0
    kept = flat()
    inject(kept, ramp(0.5, 10, 600, persist=True), 1000, np.random.default_rng(0))
    assert np.all(kept.level[1120:] == pytest.approx(120.0))


def test_missed_peak_removes_one_day_peak() -> None:
    sig, before = daily(), daily().level
    lab = inject(sig, missed_peak(0.5, 15.0, 600), 1000, np.random.default_rng(0))
    day = slice(3 * 288, 4 * 288)  # the day of row 1000
    assert sig.level[day].max() < before[day].max() - 150.0  # the peak is 400 high
    assert np.all(sig.level[: 3 * 288] == before[: 3 * 288])
    assert np.all(sig.level[4 * 288 :] == before[4 * 288 :])
    # the onset is where the missing peak is 3 noise units short, before 15:00
    assert 3 * 288 + 10 * 12 <= lab.start < 3 * 288 + 15 * 12 < lab.end
    assert before[lab.start] - sig.level[lab.start] > 15.0
    assert before[lab.start - 1] - sig.level[lab.start - 1] <= 15.0


def test_missed_peak_without_a_peak_is_refused() -> None:
    with pytest.raises(ValueError, match="no peak"):
        inject(flat(), missed_peak(0.5, 15.0, 600), 1000, np.random.default_rng(0))
    with pytest.raises(ValueError, match="hour"):
        Anomaly("missed_peak", 0.5)


def test_sparse_count_unit_is_at_least_half_an_event() -> None:
    sig = flat(model="poisson")
    sig.level[:] = 0.01
    sig.sd[:] = 0.0
    assert sig.typical_sigma(1000) == pytest.approx(0.5)


def test_place_jitters_a_little_and_pins_an_hour() -> None:
    t = START + 300 * np.arange(2880, dtype=np.float64)
    rows = {place(incident(0.5, 5, 30), t, np.random.default_rng(s)) for s in range(50)}
    assert len(rows) > 10 and all(abs(r - 1440) <= 29 for r in rows)
    pinned = place(incident(0.5, 5, 30, hour=10.0), t, np.random.default_rng(1))
    assert (t[pinned] % 86400) == 10 * 3600


def test_rows_of_and_bad_anomalies() -> None:
    assert rows_of(60, 300) == 12 and rows_of(10, 3600) == 1
    with pytest.raises(ValueError):
        Anomaly("meteor", 0.5)
    with pytest.raises(ValueError):
        incident(1.2, 5, 10)
    with pytest.raises(ValueError, match="does not fit"):
        inject(flat(), incident(0.99, 5, 600), 2870, np.random.default_rng(0))
