"""The aligned tables and the every-algorithm table."""

from __future__ import annotations

import numpy as np

from bench.nab.scorer import CorpusResult, FileCase, evaluate_corpus
from bench.nab.table import (
    AlgorithmRow,
    Column,
    format_algorithms,
    ranked,
    render,
    score_text,
    threshold_text,
)


def result_for(found: int) -> CorpusResult:
    """A corpus of 4 one-window files, ``found`` of them detected at row 40."""
    cases = [FileCase(f"c/{i}.csv", 100, [(40, 49)]) for i in range(4)]
    scores = [np.zeros(100) for _ in cases]
    for s in scores[:found]:
        s[40] = 0.9
    return evaluate_corpus(cases, scores)


def test_threshold_text_never_rounds_a_threshold_below_1_up_to_1() -> None:
    assert threshold_text(0.996375) == "0.996375"
    assert threshold_text(0.9999996) == "0.9999996"
    assert threshold_text(1 - 1e-11) == "0.99999999999"
    assert threshold_text(1.0) == "1.000000"


def test_score_text() -> None:
    assert score_text(66.26) == "66.3"
    assert score_text(-1e-12) == "0.0"
    assert score_text(-39.44) == "-39.4"
    assert score_text(float("nan")) == "-"


def test_ranked_puts_auto_first_then_best_standard_then_unscored() -> None:
    rows = [
        AlgorithmRow("static", None, note="needs parameters"),
        AlgorithmRow("mad", result_for(3)),
        AlgorithmRow("auto", result_for(1)),
        AlgorithmRow("ewma", result_for(4)),
    ]
    assert [r.algorithm for r in ranked(rows)] == ["auto", "ewma", "mad", "static"]


def test_algorithm_table_lists_each_with_scores_and_never() -> None:
    rows = [
        AlgorithmRow("auto", result_for(2), 1234.5),
        AlgorithmRow("flat", result_for(0)),
        AlgorithmRow("static", None, note="needs parameters (upper)"),
    ]
    text = format_algorithms(rows)
    lines = text.splitlines()
    auto = next(line for line in lines if line.startswith("auto")).split()
    # 2 of 4 windows found at row 40 (+1 each), 2 missed: standard -1 each,
    # 100 * (0 + 4) / 8 = 50; low-FN -2 each, 100 * (-2 + 8) / 12 = 50
    assert auto == ["auto", "50.0", "0.900000", "50.0", "0.900000", "50.0", "0.900000", "1,234"]
    flat = next(line for line in lines if line.startswith("flat")).split()
    assert flat[1:7] == ["0.0", "never", "0.0", "never", "0.0", "never"]
    assert flat[7] == "-"  # no rate measured
    assert "static: needs parameters (upper)" in text


def test_render_aligns_columns_under_group_headers() -> None:
    columns = [Column("name", left=True), Column("a", "group"), Column("bb", "group")]
    text = render(columns, [["x", "1", "22"], ["longer", "333", "4"], ["total", "9", "9"]], 2)
    lines = text.splitlines()
    assert lines[0].strip() == "group"
    assert lines[1] == "name      a  bb"
    assert lines[2] == "x         1  22"
    assert lines[3] == "longer  333   4"
    assert set(lines[4]) == {"-"} and len(lines[4]) == len(lines[1])
    assert lines[5] == "total     9   9"
    # the group name sits over its two columns
    start = lines[0].index("group")
    assert start >= len("name    ")
