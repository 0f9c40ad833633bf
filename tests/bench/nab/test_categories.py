"""``--by-category``: per-category scores and leave-one-category-out thresholds.

Files of 100 rows: probationary period 15 rows; one window on rows 40..49, so a
detection at row 40 earns exactly 1 and a false positive at row 20 (before any
window) costs the profile's full ``fp`` (0.11 standard).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.nab.categories import TOTAL, by_category, format_categories
from bench.nab.scorer import PROFILES, FileCase, best_threshold, evaluate_corpus
from tests.bench.nab.support import Corpus, run_cli, runnable_algorithms

STANDARD = PROFILES["standard"]


def window_file(name: str) -> FileCase:
    return FileCase(name, 100, [(40, 49)])


def scored(pairs: dict[int, float]) -> np.ndarray:
    s = np.zeros(100)
    for row, value in pairs.items():
        s[row] = value
    return s


def tiny_corpus() -> tuple[list[FileCase], list[np.ndarray]]:
    """a and b find their window at 0.8 (b also has a 0.5 false positive); c finds
    its window only at 0.4.

    Standard, whole corpus: at 0.8, a + b - c = 1 + 1 - 1 = 1; at 0.5, 1 - 0.11;
    at 0.4, 1 + 1 + 1 - 0.11 = 2.89: the corpus threshold is 0.4. Without c
    (a and b only): 0.8 gives 2, 0.5 and 0.4 give 1.89: c's held-out threshold
    is 0.8, where c misses its window. Without a (b and c): 0.4 (1.89 against
    0 at 0.8). Without b (a and c): 0.4 (2 against 0).
    """
    cases = [window_file("a/1.csv"), window_file("b/1.csv"), window_file("c/1.csv")]
    scores = [scored({40: 0.8}), scored({40: 0.8, 20: 0.5}), scored({40: 0.4})]
    return cases, scores


def test_held_out_threshold_is_chosen_without_the_held_out_category() -> None:
    cases, scores = tiny_corpus()
    rows = {r.category: r for r in by_category(cases, scores)}
    c = rows["c"]
    assert c.corpus["standard"].threshold == 0.4
    assert c.held_out["standard"].threshold == 0.8
    assert c.held_out["standard"].threshold == best_threshold(cases[:2], scores[:2], STANDARD)[0]
    assert c.corpus["standard"].normalised == pytest.approx(100.0)
    assert c.held_out["standard"].normalised == pytest.approx(0.0)  # missed: the null score
    assert rows["a"].held_out["standard"].threshold == 0.4
    assert rows["b"].held_out["standard"].threshold == 0.4
    # b at 0.4: its window (+1) and its false positive (-0.11): 100 * (0.89 + 1) / 2
    assert rows["b"].held_out["standard"].normalised == pytest.approx(94.5)
    assert rows["b"].held_out["standard"].fp == 1


def test_held_out_threshold_ignores_the_held_out_scores() -> None:
    cases, scores = tiny_corpus()
    before = {r.category: r.held_out for r in by_category(cases, scores)}["c"]
    # c scored quite differently: its best alone would now be 0.95
    scores[2] = scored({40: 0.95, 20: 0.3, 60: 0.2})
    after = {r.category: r.held_out for r in by_category(cases, scores)}["c"]
    for name in PROFILES:
        assert after[name].threshold == before[name].threshold


def test_totals_are_the_corpus_score_and_the_held_out_sum() -> None:
    rng = np.random.default_rng(9)
    cases = [
        FileCase("x/1.csv", 400, [(100, 139), (250, 289)]),
        FileCase("x/2.csv", 300, []),
        FileCase("y/1.csv", 500, [(60, 79), (300, 349)]),
        FileCase("z/1.csv", 300, [(200, 219)]),
        FileCase("quiet/1.csv", 300, []),
    ]
    scores = [np.round(rng.random(c.n) ** 6, 3) for c in cases]
    rows = by_category(cases, scores)
    assert [r.category for r in rows] == ["quiet", "x", "y", "z", TOTAL]
    total = rows[-1]
    assert (total.files, total.windows) == (5, 5)
    whole = evaluate_corpus(cases, scores)
    for name, profile in PROFILES.items():
        assert total.corpus[name].normalised == pytest.approx(whole[name].normalised, abs=1e-9)
        assert total.corpus[name].threshold == whole[name].threshold
        held = sum(r.held_out[name].raw for r in rows[:-1])
        windows = 5
        expected = 100 * (held + profile.fn * windows) / ((profile.tp + profile.fn) * windows)
        assert total.held_out[name].normalised == pytest.approx(expected, abs=1e-9)
    # a category without a window has no normalised score, but its FPs count
    assert math.isnan(rows[0].corpus["standard"].normalised)


def test_category_scores_are_normalised_over_their_own_windows() -> None:
    # x has 1 window of 3 found, y its only window: x = 100 * (1 - 2 + 3) / 6, y = 100
    cases = [
        FileCase("x/1.csv", 400, [(100, 109), (200, 209), (300, 309)]),
        FileCase("y/1.csv", 100, [(40, 49)]),
    ]
    x = np.zeros(400)
    x[100] = 1.0
    y = scored({40: 1.0})
    rows = {r.category: r for r in by_category(cases, [x, y])}
    assert rows["x"].corpus["standard"].normalised == pytest.approx(100 * 2 / 6)
    assert rows["y"].corpus["standard"].normalised == pytest.approx(100.0)
    # low-FN: a missed window costs 2: x = 100 * (1 - 4 + 6) / 9
    assert rows["x"].corpus["reward_low_FN_rate"].normalised == pytest.approx(100 * 3 / 9)


def categories_corpus() -> list[FileCase]:
    return [
        FileCase("x/1.csv", 400, [(100, 139), (250, 289)]),
        FileCase("x/2.csv", 200, [(150, 159)]),
        FileCase("y/1.csv", 500, [(100, 119), (300, 349)]),  # clear of the first 75 rows
        FileCase("z/1.csv", 300, [(200, 219)]),
    ]


def test_perfect_detector_scores_100_in_every_category() -> None:
    cases = categories_corpus()
    scores = []
    for c in cases:
        s = np.zeros(c.n)
        s[[left for left, _ in c.windows]] = 1.0
        scores.append(s)
    for row in by_category(cases, scores):
        for name in PROFILES:
            assert row.corpus[name].normalised == pytest.approx(100.0), (row.category, name)
            assert row.held_out[name].normalised == pytest.approx(100.0), (row.category, name)


@pytest.mark.parametrize("level", [0.0, 0.7])
def test_null_detector_scores_0_in_every_category(level: float) -> None:
    cases = categories_corpus()
    scores = [np.full(c.n, level) for c in cases]  # the same score everywhere: no signal
    # a constant score: firing everywhere loses, so the best is never to fire
    for row in by_category(cases, scores):
        for name in PROFILES:
            assert row.corpus[name].normalised == pytest.approx(0.0), (row.category, name)
            assert row.held_out[name].normalised == pytest.approx(0.0), (row.category, name)
            assert row.held_out[name].fp == 0


def test_table_is_aligned_with_one_row_per_category() -> None:
    cases, scores = tiny_corpus()
    cases.append(FileCase("quiet/1.csv", 100, []))
    scores.append(scored({30: 0.9}))
    text = format_categories(by_category(cases, scores), thresholds=True)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("category"))
    body = [line for line in lines[header + 1 : header + 7] if not line.startswith("---")]
    assert [line.split()[0] for line in body] == ["a", "b", "c", "quiet", "all"]
    assert len({len(line) for line in [lines[header], *body]}) == 1  # right-aligned columns
    quiet = next(line for line in body if line.startswith("quiet")).split()
    assert quiet[3:9] == ["-"] * 6  # no window: no normalised score
    c = next(line for line in body if line.startswith("c ")).split()
    assert c[3:5] == ["100.0", "0.0"]  # standard: corpus, held out
    assert "held-out threshold" in text


def test_cli_prints_the_categories(corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(corpus, "--workers", "1", "--by-category", "--algorithm", "ewma") == 0
    printed = capsys.readouterr().out
    assert "held out" in printed
    lines = printed.splitlines()
    for category in ("jobs", "webA", "all categories"):
        assert any(line.startswith(category + " ") for line in lines), category


def test_cli_with_every_algorithm_prints_a_table_per_algorithm(
    corpus: Corpus, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(corpus, "--workers", "2", "--by-category", "--algorithm", "all") == 0
    printed = capsys.readouterr().out
    scored = runnable_algorithms()
    for algorithm in scored:
        assert f"\n[{algorithm}]\nNAB score per category" in printed, algorithm
    assert printed.count("\nall categories ") == len(scored)
