"""``nsentry bench nab`` on a tiny synthetic folder in NAB layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.nab import runner
from services.anomaly.detectors.auto import AutoDetector
from services.cli import main
from tests.bench.nab.support import START, STEP, read_result, run_cli, stamp


def test_writes_nab_named_result_files(
    corpus: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(corpus, "--workers", "1") == 0
    out = Path(str(corpus["root"])) / "out" / "auto"  # named after the algorithm
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.csv"))
    assert written == ["jobs/auto_queue.csv", "webA/auto_latency.csv", "webA/auto_quiet.csv"]
    files = corpus["files"]
    stamps = corpus["stamps"]
    assert isinstance(files, dict) and isinstance(stamps, dict)
    for key, (values, _) in files.items():
        category, name = key.split("/")
        header, rows = read_result(out / category / f"auto_{name}")
        assert header == ["timestamp", "value", "anomaly_score"]
        assert [r[0] for r in rows] == stamps[key]  # time stamps written as read
        np.testing.assert_allclose([float(r[1]) for r in rows], values)
        scores = np.array([float(r[2]) for r in rows])
        assert np.all((scores >= 0.0) & (scores <= 1.0))
    printed = capsys.readouterr().out
    assert "[3/3]" in printed
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        assert profile in printed
    assert "threshold" in printed


def test_scores_are_the_causal_default_detector(corpus: dict[str, object]) -> None:
    assert run_cli(corpus, "--workers", "2", "--name", "mine") == 0
    out = Path(str(corpus["root"])) / "out" / "mine" / "webA" / "mine_latency.csv"
    _, rows = read_result(out)
    files = corpus["files"]
    assert isinstance(files, dict)
    values = files["webA/latency.csv"][0]
    seconds = (START + STEP * np.arange(values.shape[0])).astype(np.int64).astype(np.float64)
    direct = AutoDetector().score(seconds, values).score
    np.testing.assert_allclose([float(r[2]) for r in rows], direct, rtol=0, atol=1e-12)
    # the spike is what the detector finds most surprising after its warm-up
    scores = np.array([float(r[2]) for r in rows])
    assert int(np.argmax(scores)) == 450


def test_repeated_time_stamps_are_nudged_not_dropped() -> None:
    when = np.array(["2024-01-01T00:00", "2024-01-01T00:05", "2024-01-01T00:05"], "datetime64[ms]")
    seconds = runner.epoch_seconds(when)
    assert np.all(np.diff(seconds) > 0) and seconds.shape == (3,)
    assert seconds[2] - seconds[1] == pytest.approx(1e-3, abs=1e-6)


def test_labels_as_instants_get_nab_windows(corpus: dict[str, object]) -> None:
    data = corpus["data"]
    assert isinstance(data, Path)
    series = runner.read_series("webA/latency.csv", data / "webA" / "latency.csv")
    # one labelled instant in 600 rows: int(0.1 * 600 / 1) = 60 rows, 30 each side
    case = runner.file_case(series, [stamp(450)])
    assert case.windows == [(420, 480)]
    assert runner.file_case(series, []).windows == []


def test_missing_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "l.json"
    labels.write_text("{}")
    code = main(
        ["bench", "nab", "--data", str(tmp_path / "nope"), "--labels", str(labels), "--out", "x"]
    )
    assert code == 2
    assert "not a folder" in capsys.readouterr().err


def test_throughput_compares_with_river() -> None:
    pytest.importorskip("river")
    rng = np.random.default_rng(1)
    values = rng.normal(size=3000)
    stamps = START + STEP * np.arange(3000)
    series = runner.Series("c/x.csv", Path("x"), [], stamps.astype("datetime64[ms]"), values)
    rates, river = runner.throughput([series], batches=(1000, 3000), repeats=1)
    assert sorted(rates) == [1000, 3000] and min(rates.values()) > 0
    assert river is not None and river > 0
