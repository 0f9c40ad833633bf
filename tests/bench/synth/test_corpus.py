"""The corpus as written (seed 7): format, windows, and the variety the issue asks for."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bench.nab import runner
from bench.nab.corpus import discover
from bench.nab.scorer import PROBATIONARY_CAP_ROWS, evaluate_corpus, probationary_period
from bench.synth.corpus import CATALOGUE
from tests.bench.synth.conftest import Written

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
WINDOW_EDGE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000$")


def edge(text: str) -> np.datetime64:
    return np.datetime64(text.replace(" ", "T"), "us")


def test_size_is_scorable_in_seconds(written: Written) -> None:
    assert 40 <= len(written.summary.files) <= 70
    assert 150_000 <= written.summary.points <= 400_000


def test_every_file_is_timestamp_value_csv(written: Written) -> None:
    for spec in CATALOGUE:
        text = (written.root / "data" / spec.key).read_text()
        value = r"\d+" if spec.decimals == 0 else rf"\d+\.\d{{{spec.decimals}}}"
        # integers where the metric is a count; otherwise the spec's decimals
        assert re.fullmatch(rf"timestamp,value\n(?:{STAMP},{value}\n)+", text), spec.key
        when = written.stamps(spec.key)
        steps = np.diff(when).astype(np.int64)
        assert np.all(steps > 0) and np.all(steps % spec.cadence == 0), spec.key
        assert np.all(np.isfinite(written.values(spec.key))), spec.key


def test_windows_are_sorted_disjoint_and_inside_their_file(written: Written) -> None:
    for key, windows in written.windows.items():
        when = written.stamps(key).astype("datetime64[us]")
        previous_end = None
        for start, end in windows:
            assert WINDOW_EDGE.match(start) and WINDOW_EDGE.match(end)
            a, b = edge(start), edge(end)
            assert when[0] <= a < b <= when[-1], key
            assert a in when and b in when, key  # edges are rows of the file
            if previous_end is not None:
                assert a > previous_end, key
            previous_end = b


def test_windows_follow_nab_rule_one_per_anomaly(written: Written) -> None:
    """No two anomalies share a window, each window holds its onset, NAB's width or more."""
    for key, windows in written.windows.items():
        anomalies = written.anomalies[key]
        assert len(windows) == len(anomalies), key
        when = written.stamps(key).astype("datetime64[us]")
        rows = [(int(np.searchsorted(when, edge(a))), int(np.searchsorted(when, edge(b))))
                for a, b in windows]  # fmt: skip
        width = max(int(0.10 * when.size / max(len(anomalies), 1)), 10)
        probation = probationary_period(when.size)
        for (left, right), anomaly in zip(rows, anomalies, strict=True):
            onset = int(np.searchsorted(when, edge(str(anomaly["onset"]))))
            assert left < onset <= right, key
            assert onset - left == width // 2, key  # centred on the onset
            assert width // 2 <= right - onset <= width, key
            assert left >= probation, key  # never inside NAB's probationary period


def test_three_cadences_and_days_to_months(written: Written) -> None:
    cadences = {spec.cadence for spec in CATALOGUE}
    assert cadences == {60, 300, 3600}
    spans = [
        float((written.stamps(s.key)[-1] - written.stamps(s.key)[0]) / np.timedelta64(1, "D"))
        for s in CATALOGUE
    ]
    assert min(spans) < 4 and max(spans) > 90
    for cadence in cadences:  # each cadence has clean files and files with anomalies
        files = [s.key for s in CATALOGUE if s.cadence == cadence]
        assert any(written.windows[k] for k in files) and any(not written.windows[k] for k in files)


def test_files_without_anomalies(written: Written) -> None:
    clean = [k for k, w in written.windows.items() if not w]
    assert len(clean) >= 6
    assert {k.split("/")[0] for k in clean} == {s.category for s in CATALOGUE}


def test_every_anomaly_kind_is_present(written: Written) -> None:
    kinds = {a["kind"] for anomalies in written.anomalies.values() for a in anomalies}
    assert kinds == {"incident", "spike", "shift", "variance", "missed_peak", "flatline", "ramp"}


def test_recurring_incidents_with_a_later_smaller_one(written: Written) -> None:
    recurring = []
    for key, anomalies in written.anomalies.items():
        sizes = [float(a["size"]) for a in anomalies if a["kind"] == "incident"]
        if len(sizes) >= 3 and any(later < max(sizes[:i]) for i, later in enumerate(sizes) if i):
            recurring.append(key)
    assert len(recurring) >= 8
    assert {k.split("/")[0] for k in recurring} >= {"errors", "latency", "events", "queues"}
    # and smaller in the data too: the excess over the day's median follows the sizes
    key = "latency/gateway_p99_ms.csv"
    when, values = written.stamps(key), written.values(key)
    excess = []
    for anomaly in written.anomalies[key]:
        onset = int(np.searchsorted(when, edge(str(anomaly["onset"])).astype("datetime64[s]")))
        last = int(np.searchsorted(when, edge(str(anomaly["last"])).astype("datetime64[s]")))
        day = values[max(onset - 12, 0) : onset + 12]
        excess.append(values[onset : last + 1].max() - np.median(day))
    assert [a["size"] for a in written.anomalies[key]] == [12.0, 6.0, 4.0]
    assert excess[0] > excess[1] > excess[2] > 0


def test_gaps_in_timestamps(written: Written) -> None:
    long_gaps = []
    for spec in CATALOGUE:
        steps = np.diff(written.stamps(spec.key)).astype(np.int64)
        if np.any(steps >= 10 * spec.cadence):
            long_gaps.append(spec.key)
    assert len(long_gaps) >= 5
    assert {s.key for s in CATALOGUE if s.gaps} == set(long_gaps)


def test_sparse_counts_are_mostly_zeros(written: Written) -> None:
    sparse = [
        s.key for s in CATALOGUE if s.decimals == 0 and np.mean(written.values(s.key) == 0.0) >= 0.8
    ]
    assert len(sparse) >= 4
    assert any(written.windows[k] for k in sparse) and any(not written.windows[k] for k in sparse)


def test_the_nab_runner_reads_it(written: Written) -> None:
    data = written.root / "data"
    found = discover(data)
    assert [k for k, _ in found] == sorted(written.windows)
    labels = runner.load_labels(written.root / "windows.json")
    keys = ["errors/http_5xx_per_min.csv", "latency/search_p99_ms.csv", "queues/kafka_lag.csv"]
    cases, oracle, silent = [], [], []
    for key in keys:
        series = runner.read_series(key, data / key)
        case = runner.file_case(series, labels[key])
        assert len(case.windows) == len(written.windows[key])
        seconds = runner.epoch_seconds(series.when)
        assert np.all(np.diff(seconds) > 0)  # no time stamp needed nudging
        scores = np.zeros(case.n)
        for left, _ in case.windows:
            scores[left] = 1.0
        cases.append(case)
        oracle.append(scores)
        silent.append(np.zeros(case.n))
    assert probationary_period(10**6) == int(0.15 * PROBATIONARY_CAP_ROWS)
    perfect = evaluate_corpus(cases, oracle)
    assert perfect["standard"].normalised == 100.0
    assert evaluate_corpus(cases, silent)["standard"].normalised == 0.0


def test_nab_command_scores_the_subset(tmp_path: Path) -> None:
    from bench.synth.runner import write_corpus
    from services.cli import main

    write_corpus(tmp_path / "c", 7, subset=True)
    args = ["bench", "nab", "--data", str(tmp_path / "c" / "data"), "--labels"]
    args += [str(tmp_path / "c" / "windows.json"), "--out", str(tmp_path / "out")]
    assert main([*args, "--no-throughput", "--workers", "1"]) == 0
