"""One series: its seed, its missing rows, its NAB windows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.synth import recipes
from bench.synth.anomalies import Label, flatline, incident, spike
from bench.synth.corpus import CATALOGUE
from bench.synth.series import Spec, file_seed, generate, nab_windows


def label(start: int, end: int | None = None) -> Label:
    return Label("incident", start, start if end is None else end, 5.0)


def test_window_is_a_tenth_of_the_file_shared_and_centred() -> None:
    assert nab_windows(1000, [label(500)]) == [(450, 550)]
    assert nab_windows(1000, [label(300), label(700)]) == [(275, 325), (675, 725)]
    assert nab_windows(1000, []) == []


def test_window_never_narrower_than_the_floor() -> None:
    many = [label(100 * i) for i in range(1, 9)]  # 8 anomalies in 1,000 rows: 12 rows each
    assert nab_windows(1000, many)[0] == (94, 106)
    assert nab_windows(200, [label(50), label(150)]) == [(45, 55), (145, 155)]  # 10, not 10 %


def test_window_stretches_over_a_long_anomaly_by_one_width_at_most() -> None:
    assert nab_windows(1000, [label(500, 530)]) == [(450, 550)]  # inside the right half
    assert nab_windows(1000, [label(500, 580)]) == [(450, 580)]
    assert nab_windows(1000, [label(500, 900)]) == [(450, 600)]


def test_windows_merge_and_clip() -> None:
    assert nab_windows(1000, [label(700), label(300), label(320)]) == [(284, 336), (684, 716)]
    assert nab_windows(100, [label(2), label(98)]) == [(0, 7), (93, 99)]


def test_file_seed_depends_on_seed_and_name_only() -> None:
    a = file_seed(7, "errors/a.csv").generate_state(4)
    assert np.array_equal(a, file_seed(7, "errors/a.csv").generate_state(4))
    assert not np.array_equal(a, file_seed(8, "errors/a.csv").generate_state(4))
    assert not np.array_equal(a, file_seed(7, "errors/b.csv").generate_state(4))


def spec(**changes: object) -> Spec:
    base = Spec(
        "test/flat.csv",
        300,
        10,
        "2024-01-01",
        recipes.traffic,
        {"lo": 100.0, "hi": 300.0},
        (incident(0.5, 8, 60),),
    )
    return replace(base, **changes)


def test_generate_is_deterministic_and_seed_sensitive() -> None:
    one, two, other = generate(spec(), 1), generate(spec(), 1), generate(spec(), 2)
    assert one.csv_text() == two.csv_text()
    assert one.csv_text() != other.csv_text()
    assert one.stamps[0] == np.datetime64("2024-01-01T00:00:00")
    assert one.stamps.shape == (10 * 288,)


def test_a_gap_removes_rows_and_windows_use_the_rows_left() -> None:
    whole = generate(spec(), 1)
    gapped = generate(spec(gaps=((0.3, 120),)), 1)
    assert len(whole.values) - len(gapped.values) == 24
    steps = np.diff(gapped.stamps).astype(np.int64)
    assert sorted(set(steps.tolist())) == [300, 25 * 300]
    # the anomaly is at the same instant; its row and its window are counted without the gap
    assert gapped.stamps[gapped.labels[0].start] == whole.stamps[whole.labels[0].start]
    assert gapped.windows == nab_windows(len(gapped.values), gapped.labels)


def test_a_gap_over_an_anomaly_is_refused() -> None:
    with pytest.raises(ValueError, match="gap"):
        generate(spec(gaps=((0.45, 1200),)), 1)


def test_dropped_rows_never_take_an_onset() -> None:
    s = generate(spec(anomalies=(spike(0.4, 9), spike(0.7, 9)), drop=0.3), 1)
    assert 0.6 < len(s.values) / 2880 < 0.8
    for lab in s.labels:
        assert lab.start == lab.end  # a one-row spike kept whole
        before = np.median(s.values[lab.start - 5 : lab.start])
        assert s.values[lab.start] > 1.2 * before


def test_flatline_repeats_the_last_reading() -> None:
    s = generate(spec(anomalies=(flatline(0.5, 240),), decimals=3), 4)
    lab = s.labels[0]
    stuck = s.values[lab.start - 1 : lab.end + 1]
    assert lab.end - lab.start + 1 == 48 and np.all(stuck == stuck[0])
    assert np.unique(s.values).size > 2000  # elsewhere the value moves


def test_catalogue_keys_are_unique_and_generate() -> None:
    keys = [s.key for s in CATALOGUE]
    assert len(keys) == len(set(keys))
    assert all(k.count("/") == 1 and k.endswith(".csv") for k in keys)
