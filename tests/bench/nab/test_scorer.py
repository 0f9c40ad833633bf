"""The NAB scorer on small hand-made cases, each worked out by hand in its comments.

Common numbers (scaled sigmoid ``S(y) = 2 / (1 + exp(5 y)) - 1``):

* ``S(-1)   = 2 / (1 + e^-5) - 1   = 0.98661``  (earliest row of a window)
* ``S(-0.9) = 2 / (1 + e^-4.5) - 1 = 0.97803``, ``/ S(-1) = 0.99130``
* ``S(-0.5) = 2 / (1 + e^-2.5) - 1 = 0.84828``, ``/ S(-1) = 0.85979``
* ``S(-0.1) = 2 / (1 + e^-0.5) - 1 = 0.24492``, ``/ S(-1) = 0.24824``
* ``S(1/9)  = 2 / (1 + e^0.5556) - 1 = -0.27085``

Most cases use one file of 100 rows: probationary period ``min(floor(15), 750)
= 15`` rows, and one window on rows 40..49 (width 10).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.nab.scorer import (
    PROFILES,
    FileCase,
    Profile,
    best_threshold,
    evaluate_corpus,
    normalise,
    probationary_period,
    scaled_sigmoid,
    score_file,
    windows_from_labels,
    windows_to_indices,
)

STANDARD = PROFILES["standard"]
LOW_FP = PROFILES["reward_low_FP_rate"]
LOW_FN = PROFILES["reward_low_FN_rate"]


def one_window_file() -> FileCase:
    return FileCase("cat/one.csv", 100, [(40, 49)])


def detections(n: int, rows: list[int]) -> np.ndarray:
    scores = np.zeros(n)
    scores[rows] = 1.0
    return scores


def raw(case: FileCase, rows: list[int], profile: Profile = STANDARD) -> float:
    return score_file(case, detections(case.n, rows), 0.5, profile).raw


def test_profile_weights_are_nabs() -> None:
    assert (STANDARD.tp, STANDARD.fn, STANDARD.fp) == (1.0, 1.0, 0.11)
    assert (LOW_FP.tp, LOW_FP.fn, LOW_FP.fp) == (1.0, 1.0, 0.22)
    assert (LOW_FN.tp, LOW_FN.fn, LOW_FN.fp) == (1.0, 2.0, 0.11)


def test_probationary_period() -> None:
    # floor(0.15 n), capped at 0.15 * 5000 = 750
    assert probationary_period(100) == 15
    assert probationary_period(4032) == 604
    assert probationary_period(5000) == 750
    assert probationary_period(22695) == 750


def test_scaled_sigmoid_values() -> None:
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(1 / 9)) == pytest.approx(-0.27085, abs=1e-5)
    assert float(scaled_sigmoid(3.5)) == -1.0  # beyond 3: a full false positive


def test_detection_at_the_first_row_of_a_window_earns_the_full_weight() -> None:
    # y = -(49 - 40 + 1) / 10 = -1, and S(-1) / S(-1) = 1
    assert raw(one_window_file(), [40]) == pytest.approx(1.0, abs=1e-12)


def test_detection_in_the_middle_and_at_the_end_of_a_window() -> None:
    # row 45: y = -(49 - 45 + 1) / 10 = -0.5 -> 0.84828 / 0.98661 = 0.85979
    assert raw(one_window_file(), [45]) == pytest.approx(0.85979, abs=1e-5)
    # row 49: y = -1 / 10 -> 0.24492 / 0.98661 = 0.24824 (a late detection earns little)
    assert raw(one_window_file(), [49]) == pytest.approx(0.24824, abs=1e-5)


def test_only_the_first_detection_of_a_window_counts() -> None:
    # rows 41, 45, 48: only row 41 counts, y = -0.9 -> 0.99130; the others cost nothing
    result = score_file(one_window_file(), detections(100, [41, 45, 48]), 0.5, STANDARD)
    assert result.raw == pytest.approx(0.99130, abs=1e-5)
    assert (result.tp, result.fp, result.fn) == (1, 0, 0)


def test_false_positive_before_any_window_costs_the_full_fp_weight() -> None:
    # row 20 is before the first window: -fp; the window is missed: -fn
    result = score_file(one_window_file(), detections(100, [20]), 0.5, STANDARD)
    assert result.raw == pytest.approx(-0.11 - 1.0, abs=1e-12)
    assert (result.tp, result.fp, result.fn) == (0, 1, 1)
    assert raw(one_window_file(), [20], LOW_FP) == pytest.approx(-0.22 - 1.0, abs=1e-12)


def test_false_positive_right_after_a_window_costs_little() -> None:
    # TP at 40 (+1); FP at row 50: y = (50 - 49) / (10 - 1) = 1/9 -> 0.11 * -0.27085 = -0.02979
    assert raw(one_window_file(), [40, 50]) == pytest.approx(1.0 - 0.029793, abs=1e-5)


def test_false_positive_long_after_a_window_costs_the_full_fp_weight() -> None:
    # row 90: y = (90 - 49) / 9 = 4.6 > 3, so S = -1: -0.11
    assert raw(one_window_file(), [40, 90]) == pytest.approx(1.0 - 0.11, abs=1e-12)


def test_false_positive_is_weighted_relative_to_the_previous_window() -> None:
    # windows 20..29 and 60..69 (width 10); FP at row 34: y = (34 - 29) / 9 = 5/9,
    # S(5/9) = -0.88293 -> -0.09712; both windows detected at their first row (+2)
    case = FileCase("cat/two.csv", 100, [(20, 29), (60, 69)])
    result = score_file(case, detections(100, [20, 34, 60]), 0.5, STANDARD)
    assert result.raw == pytest.approx(2.0 + 0.11 * -0.88293, abs=1e-5)
    assert (result.tp, result.fp, result.fn) == (2, 1, 0)


def test_missed_window_costs_the_fn_weight() -> None:
    assert raw(one_window_file(), []) == -1.0
    assert raw(one_window_file(), [], LOW_FN) == -2.0


def test_probationary_rows_are_ignored() -> None:
    # row 10 < 15: neither a false positive nor anything else; the window is still missed
    result = score_file(one_window_file(), detections(100, [10]), 0.5, STANDARD)
    assert result.raw == -1.0
    assert (result.tp, result.fp, result.fn) == (0, 0, 1)
    # a window reaching into the probationary period is scored from its first scored row:
    # window 10..29 (width 20), detection at row 15: y = -(29 - 15 + 1) / 20 = -0.75,
    # S(-0.75) = 2 / (1 + e^-3.75) - 1 = 0.95405 -> / 0.98661 = 0.96699
    early = FileCase("cat/early.csv", 100, [(10, 29)])
    assert score_file(early, detections(100, [12, 15]), 0.5, STANDARD).raw == pytest.approx(
        0.96699, abs=1e-5
    )


def test_threshold_turns_scores_into_detections() -> None:
    # score >= threshold detects: 0.7 at row 40 detects at 0.7, not at 0.71
    scores = np.zeros(100)
    scores[40] = 0.7
    assert score_file(one_window_file(), scores, 0.7, STANDARD).raw == pytest.approx(1.0)
    assert score_file(one_window_file(), scores, 0.71, STANDARD).raw == -1.0


def test_normalisation_between_null_and_perfect() -> None:
    # 3 windows: null = -3 (every window missed), perfect = +3; raw 1 -> 100 * 4 / 6
    assert normalise(-3.0, 3, STANDARD) == 0.0
    assert normalise(3.0, 3, STANDARD) == 100.0
    assert normalise(1.0, 3, STANDARD) == pytest.approx(66.6667, abs=1e-4)
    # reward_low_FN: null = -6, perfect = 3; raw 0 -> 100 * 6 / 9
    assert normalise(0.0, 3, LOW_FN) == pytest.approx(66.6667, abs=1e-4)


def test_best_threshold_is_chosen_over_the_whole_corpus() -> None:
    # file A: FP (before its window) scored 0.8, window row 45 scored 0.6;
    # file B: its window's first row 40 scored 0.6.
    # threshold 0.8: -0.11 - 1 (A) - 1 (B) = -2.11; threshold 0.6: -0.11 + 0.85979 + 1
    # = 1.74979; never firing: -2. Best: 0.6.
    a = np.zeros(100)
    a[20], a[45] = 0.8, 0.6
    b = np.zeros(100)
    b[40] = 0.6
    cases = [one_window_file(), FileCase("cat/b.csv", 100, [(40, 49)])]
    threshold, best = best_threshold(cases, [a, b], STANDARD)
    assert threshold == 0.6
    assert best == pytest.approx(-0.11 + 0.85979 + 1.0, abs=1e-5)
    result = evaluate_corpus(cases, [a, b])["standard"]
    assert result.normalised == pytest.approx(100 * (1.74979 + 2) / 4, abs=1e-3)
    assert (result.tp, result.fp, result.fn) == (2, 1, 0)


def test_best_threshold_can_be_never_firing() -> None:
    # ten FPs before the window at 0.7, the window found at row 45 at 0.6:
    # standard: -1.1 + 0.85979 = -0.24 beats -1 -> fire at 0.6;
    # reward_low_FP: -2.2 + 0.85979 = -1.34 loses to -1 -> never fire
    scores = np.zeros(100)
    scores[20:30] = 0.7
    scores[45] = 0.6
    cases = [one_window_file()]
    threshold, best = best_threshold(cases, [scores], STANDARD)
    assert threshold == 0.6 and best == pytest.approx(-1.1 + 0.85979, abs=1e-5)
    threshold, best = best_threshold(cases, [scores], LOW_FP)
    assert threshold > 0.7 and best == -1.0


def test_sweep_agrees_with_scoring_each_file_at_its_threshold() -> None:
    rng = np.random.default_rng(3)
    cases = [
        FileCase("c/a.csv", 400, [(100, 139), (250, 289)]),
        FileCase("c/b.csv", 300, []),
        FileCase("c/c.csv", 500, [(60, 79), (300, 349)]),
    ]
    scores = [np.round(rng.random(c.n) ** 4, 3) for c in cases]  # ties on purpose
    for profile in PROFILES.values():
        threshold, best = best_threshold(cases, scores, profile)
        total = sum(
            score_file(c, s, threshold, profile).raw for c, s in zip(cases, scores, strict=True)
        )
        assert total == pytest.approx(best, abs=1e-9)
        # no candidate threshold does better
        for t in np.unique(np.concatenate(scores)):
            other = sum(
                score_file(c, s, t, profile).raw for c, s in zip(cases, scores, strict=True)
            )
            assert other <= best + 1e-9


def test_windows_from_labels_nab_rule() -> None:
    # n = 1000, two labels: window length int(0.10 * 1000 / 2) = 50, half 25 rows each side
    assert windows_from_labels(1000, [100, 500]) == [(75, 125), (475, 525)]
    # overlapping windows merge: (75, 125) and (95, 145)
    assert windows_from_labels(1000, [100, 120]) == [(75, 145)]
    # clipped to the file
    assert windows_from_labels(1000, [5]) == [(0, 55)]
    assert windows_from_labels(1000, []) == []


def test_windows_to_indices_from_timestamps() -> None:
    stamps = np.arange("2024-01-01T00:00", "2024-01-01T01:40", 5, dtype="datetime64[m]")
    windows = windows_to_indices(
        stamps.astype("datetime64[ms]"),
        [["2024-01-01 00:10:00.000000", "2024-01-01 00:22:00.000000"]],
    )
    # rows at 00:10, 00:15, 00:20 fall inside: indices 2..4
    assert windows == [(2, 4)]


def test_scores_must_match_the_file() -> None:
    with pytest.raises(ValueError, match="scores for"):
        score_file(one_window_file(), np.zeros(99), 0.5, STANDARD)
    with pytest.raises(ValueError, match="finite"):
        score_file(one_window_file(), np.full(100, np.nan), 0.5, STANDARD)
    with pytest.raises(ValueError, match="overlap"):
        FileCase("c/x.csv", 100, [(10, 30), (30, 40)])
