"""``--algorithm NAME`` and ``--algorithm all`` of ``nsentry bench nab``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.nab import runner
from bench.nab.corpus import epoch_seconds, file_case, read_series
from bench.nab.scorer import evaluate_corpus
from services.anomaly.detectors import ALGORITHMS, create
from tests.bench.nab.support import (
    Corpus,
    make_corpus,
    result_scores,
    run_cli,
    runnable_algorithms,
    seconds_of,
)

LATENCY = ("webA", "latency.csv")


def out_of(corpus: Corpus) -> Path:
    root = corpus["root"]
    assert isinstance(root, Path)
    return root / "out"


def values_of(corpus: Corpus, key: str) -> np.ndarray:
    files = corpus["files"]
    assert isinstance(files, dict)
    values = files[key][0]
    assert isinstance(values, np.ndarray)
    return values


def test_named_algorithm_scores_with_that_detector(corpus: Corpus) -> None:
    assert run_cli(corpus, "--workers", "2", "--algorithm", "mad") == 0
    assert run_cli(corpus, "--workers", "1") == 0
    category, name = LATENCY
    mad = result_scores(out_of(corpus) / "mad" / category / f"mad_{name}")
    auto = result_scores(out_of(corpus) / "auto" / category / f"auto_{name}")
    values = values_of(corpus, "webA/latency.csv")
    direct = create("mad", {}).score(seconds_of(values.shape[0]), values).score
    np.testing.assert_allclose(mad, direct, rtol=0, atol=1e-12)
    assert not np.allclose(mad, auto)  # not the default detector under another name


def test_batches_of_a_named_algorithm_are_causal_and_equal_one_call() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(10.0, 1.0, 2500)
    seconds = seconds_of(2500)
    batched = runner.score_series(values, seconds, batch=1000, algorithm="cusum")
    whole = create("cusum", {}).score(seconds, values).score
    np.testing.assert_allclose(batched, whole, rtol=0, atol=1e-9)


def test_name_overrides_the_results_folder(corpus: Corpus) -> None:
    assert run_cli(corpus, "--workers", "1", "--algorithm", "ewma", "--name", "mine") == 0
    assert (out_of(corpus) / "mine" / "jobs" / "mine_queue.csv").is_file()
    assert not (out_of(corpus) / "ewma").exists()


def test_unknown_algorithm_is_refused_with_the_choices(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(corpus, "--algorithm", "prophet")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'prophet'" in err
    for name in [*ALGORITHMS, "all"]:
        assert f"'{name}'" in err
    assert not out_of(corpus).exists()


def test_algorithm_needing_parameters_is_refused_then_scored_with_params(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(corpus, "--algorithm", "static") == 2
    assert "static cannot be built" in capsys.readouterr().err
    assert (
        run_cli(corpus, "--workers", "1", "--algorithm", "static", "--params", '{"upper": 30}') == 0
    )
    category, name = LATENCY
    scores = result_scores(out_of(corpus) / "static" / category / f"static_{name}")
    values = values_of(corpus, "webA/latency.csv")
    direct = create("static", {"upper": 30}).score(seconds_of(values.shape[0]), values).score
    np.testing.assert_allclose(scores, direct, rtol=0, atol=1e-12)
    assert scores[450] > 0.5 and np.all(scores[values <= 30] == 0.0)  # the one value above 30


def test_params_must_be_a_json_object(corpus: Corpus) -> None:
    with pytest.raises(SystemExit):
        run_cli(corpus, "--algorithm", "ewma", "--params", "[1, 2]")


def test_all_lists_every_algorithm_auto_first(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(corpus, "--workers", "2", "--algorithm", "all") == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("\nevery algorithm") :]
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("algorithm"))
    rows = [line.split()[0] for line in lines[header + 1 : header + 1 + len(ALGORITHMS)]]
    assert sorted(rows) == sorted(ALGORITHMS)
    assert rows[0] == "auto"
    scored = runnable_algorithms()
    assert "static" not in scored  # it needs a bound: listed last, with the reason
    assert rows[-1] == "static"
    assert "static: needs parameters" in table
    # progress: one line per algorithm scored
    assert sum(f"] {a} " in printed for a in scored) == len(scored)
    # every algorithm's result files, each its own detector's scores
    category, name = LATENCY
    values = values_of(corpus, "webA/latency.csv")
    for algorithm in scored:
        written = result_scores(out_of(corpus) / algorithm / category / f"{algorithm}_{name}")
        direct = create(algorithm, {}).score(seconds_of(values.shape[0]), values).score
        np.testing.assert_allclose(written, direct, rtol=0, atol=1e-12, err_msg=algorithm)


def test_all_table_figures_are_each_algorithms_corpus_scores(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(corpus, "--workers", "1", "--algorithm", "all") == 0
    printed = capsys.readouterr().out
    data, labels_path = corpus["data"], corpus["labels"]
    assert isinstance(data, Path) and isinstance(labels_path, Path)
    labels = runner.load_labels(labels_path)
    series = [read_series(k, data / k) for k in ("jobs/queue.csv", "webA/latency.csv")]
    series.append(read_series("webA/quiet.csv", data / "webA/quiet.csv"))
    cases = [file_case(s, labels.get(s.key, [])) for s in series]
    for algorithm in ("cusum", "ewma"):
        scores = [
            runner.score_series(s.values, epoch_seconds(s.when), algorithm=algorithm)
            for s in series
        ]
        result = evaluate_corpus(cases, scores)
        row = next(
            line for line in printed.splitlines() if line.startswith(f"{algorithm} ")
        ).split()
        assert row[1] == f"{result['standard'].normalised:.1f}"
        assert row[3] == f"{result['reward_low_FP_rate'].normalised:.1f}"
        assert row[5] == f"{result['reward_low_FN_rate'].normalised:.1f}"


def test_all_refuses_name_and_params(corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(corpus, "--algorithm", "all", "--name", "x") == 2
    assert "apply to one algorithm" in capsys.readouterr().err


def test_labels_default_to_windows_json_beside_the_data(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    # the layout of `nsentry bench synth --out DIR`: DIR/data and DIR/windows.json
    assert run_cli(corpus, "--workers", "1", labels=False) == 0
    assert "(3 files, 2 windows)" in capsys.readouterr().out


def test_missing_labels_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path)
    labels = corpus["labels"]
    assert isinstance(labels, Path)
    labels.unlink()
    assert run_cli(corpus, labels=False) == 2
    assert "no --labels" in capsys.readouterr().err
