"""The contract every registered detector honours (run over all of ``ALGORITHMS``).

Like river's estimator checks: each algorithm, new ones included, is held to
the same streaming interface — causal, batch equal to point-by-point, JSON
state that round-trips exactly, scores in [0, 1], warm-up, strict inputs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from services.anomaly.detectors import (
    ALGORITHMS,
    Detector,
    InvalidInput,
    InvalidParams,
    PointScore,
    create,
)

from .helpers import (
    CONTRACT_PARAMS,
    EXCURSION_DISTANCES,
    assert_scores_close,
    assert_scores_identical,
    assert_state_close,
    concat,
    contract_series,
    excursion,
    ordinary_series,
    stack,
    value_scale,
)

NAMES = sorted(ALGORITHMS)


def degenerate_series() -> dict[str, np.ndarray]:
    """Inputs that break naive arithmetic: no spread, huge offsets, tiny scales."""
    rng = np.random.default_rng(77)
    n = 1300
    return {
        "constant": np.full(n, 50.0),
        "two_values": np.where(np.arange(n) % 2 == 0, 49.0, 51.0),
        "huge_offset": 1e12 + rng.normal(0.0, 1e-3, n),
        "tiny_scale": 50.0 + rng.normal(0.0, 1e-9, n),
        "sparse_counts": rng.poisson(0.3, n).astype(np.float64),
        "wild": rng.standard_cauchy(n) * 1e6,
    }


def make(name: str) -> Detector:
    return create(name, CONTRACT_PARAMS.get(name, {}))


def assert_points_close(actual: PointScore, expected: PointScore) -> None:
    fields = ("score", "expected", "lower", "upper", "detail")
    np.testing.assert_allclose(
        [float("nan") if getattr(actual, f) is None else getattr(actual, f) for f in fields],
        [float("nan") if getattr(expected, f) is None else getattr(expected, f) for f in fields],
        rtol=1e-9,
        atol=1e-9,
        equal_nan=True,
    )


def assert_plain_json(value: Any, path: str = "state") -> None:
    """Only dict/list/str/int/float/bool/None, and no NumPy scalars or NaN."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, path
            assert_plain_json(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain_json(item, f"{path}[{i}]")
    else:
        assert type(value) in (str, int, float, bool, type(None)), f"{path}: {type(value)}"
        if type(value) is float:
            assert np.isfinite(value), path


def json_state(detector: Detector) -> str:
    # allow_nan=False: states are stored as Postgres jsonb, which has no NaN
    return json.dumps(detector.get_state(), allow_nan=False, sort_keys=True)


@pytest.fixture(scope="module")
def series() -> tuple[np.ndarray, np.ndarray]:
    return contract_series()


@pytest.fixture(scope="module")
def whole_run(series: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Each algorithm scored over the whole series in one batch (shared, read-only)."""
    timestamps, values = series
    runs = {}
    for name in NAMES:
        detector = make(name)
        runs[name] = {"scores": detector.score(timestamps, values), "state": detector.get_state()}
    return runs


def test_every_algorithm_is_registered_under_its_name() -> None:
    for name, detector_class in ALGORITHMS.items():
        assert detector_class.name == name
        assert re.fullmatch(r"[a-z][a-z_]*", name)


@pytest.mark.parametrize("name", NAMES)
class TestContract:
    def test_scores_are_probabilities_with_ordered_bands(
        self, name: str, series: tuple[np.ndarray, np.ndarray], whole_run: dict[str, Any]
    ) -> None:
        scores = whole_run[name]["scores"]
        assert len(scores) == series[1].shape[0]
        assert np.all(np.isfinite(scores.score))
        assert np.all((scores.score >= 0.0) & (scores.score <= 1.0))
        for field in ("expected", "lower", "upper"):
            column = getattr(scores, field)
            assert not np.any(np.isinf(column)), field
        banded = ~np.isnan(scores.lower) & ~np.isnan(scores.upper)
        assert np.all(scores.lower[banded] <= scores.upper[banded])
        centred = banded & ~np.isnan(scores.expected)
        assert np.all(scores.lower[centred] <= scores.expected[centred])
        assert np.all(scores.expected[centred] <= scores.upper[centred])

    def test_warmup_scores_zero_then_scores(
        self, name: str, series: tuple[np.ndarray, np.ndarray], whole_run: dict[str, Any]
    ) -> None:
        detector = make(name)
        assert detector.n_seen == 0 and not detector.is_warm or detector.warmup == 0
        warmup = detector.warmup
        assert 0 <= warmup < series[1].shape[0]
        scores = whole_run[name]["scores"].score
        assert np.all(scores[:warmup] == 0.0)
        assert np.any(scores[warmup:] > 0.0), "never scores after warm-up"

    def test_n_seen_counts_learned_points(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        detector.score(timestamps[:100], values[:100])
        assert detector.n_seen == 100
        detector.score(timestamps[100:101], values[100:101], learn=False)
        assert detector.n_seen == 100
        detector.score_one(float(timestamps[100]), float(values[100]))
        assert detector.n_seen == 101
        assert detector.is_warm == (101 >= detector.warmup)

    def test_batch_equals_point_by_point(
        self, name: str, series: tuple[np.ndarray, np.ndarray], whole_run: dict[str, Any]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        points = [
            detector.score_one(float(t), float(v))
            for t, v in zip(timestamps.tolist(), values.tolist(), strict=True)
        ]
        assert_scores_close(stack(points), whole_run[name]["scores"], scale=value_scale(values))
        assert_state_close(detector.get_state(), whole_run[name]["state"])

    def test_any_chunking_gives_the_same_scores(
        self, name: str, series: tuple[np.ndarray, np.ndarray], whole_run: dict[str, Any]
    ) -> None:
        timestamps, values = series
        rng = np.random.default_rng(5)
        cuts = np.sort(rng.choice(np.arange(1, values.shape[0]), size=25, replace=False))
        detector = make(name)
        parts = [
            detector.score(ts, vs)
            for ts, vs in zip(np.split(timestamps, cuts), np.split(values, cuts), strict=True)
        ]
        assert_scores_close(concat(parts), whole_run[name]["scores"], scale=value_scale(values))

    def test_causal_prefix_scores_are_unchanged_by_later_points(
        self, name: str, series: tuple[np.ndarray, np.ndarray], whole_run: dict[str, Any]
    ) -> None:
        timestamps, values = series
        whole = whole_run[name]["scores"]
        for length in (1, 57, make(name).warmup + 1, 1105, 1333):
            prefix = make(name).score(timestamps[:length], values[:length])
            # the whole run is one batch and the prefix another: same numbers
            for field in ("score", "expected", "lower", "upper"):
                np.testing.assert_allclose(
                    getattr(prefix, field),
                    getattr(whole, field)[:length],
                    rtol=1e-12,
                    atol=1e-12,
                    equal_nan=True,
                    err_msg=f"{field} of a {length}-point prefix",
                )

    def test_json_state_round_trip_mid_series_is_exact(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        warmup = make(name).warmup
        for cut in sorted({1, max(1, warmup - 1), warmup, warmup + 7, 1151, 1310}):
            original = make(name)
            original.score(timestamps[:cut], values[:cut])
            restored = make(name)
            restored.set_state(json.loads(json_state(original)))
            assert json_state(restored) == json_state(original)
            assert restored.n_seen == original.n_seen == cut
            assert_scores_identical(
                restored.score(timestamps[cut:], values[cut:]),
                original.score(timestamps[cut:], values[cut:]),
            )
            assert json_state(restored) == json_state(original)

    def test_state_holds_only_plain_json_types(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        assert_plain_json(detector.get_state())
        detector.score(timestamps, values)
        assert_plain_json(detector.get_state())

    def test_reset_forgets_everything(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        fresh = json_state(detector)
        detector.score(timestamps[:1200], values[:1200])
        detector.reset()
        assert json_state(detector) == fresh
        assert detector.n_seen == 0

    def test_learn_false_leaves_the_state_unchanged(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        detector.score(timestamps[:1200], values[:1200])
        before = json_state(detector)
        # late points, a repeated point, and points ahead of the stream
        probe_ts = np.concatenate(
            (timestamps[1150:1160], timestamps[1199:1200], timestamps[1200:1230])
        )
        probe_values = np.concatenate(
            (values[1150:1160], values[1199:1200], values[1200:1230] + 30)
        )
        scores = detector.score(probe_ts, probe_values, learn=False)
        assert np.all((scores.score >= 0.0) & (scores.score <= 1.0))
        detector.score_one(float(timestamps[5]), 1e6, learn=False)
        assert json_state(detector) == before
        assert detector.n_seen == 1200

    def test_learn_false_scores_each_point_against_the_current_model(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        for cut in (make(name).warmup + 3, 1200, 1305):
            detector = make(name)
            detector.score(timestamps[:cut], values[:cut])
            ahead = detector.score(timestamps[cut : cut + 5], values[cut : cut + 5], learn=False)
            for i in range(5):
                alone = detector.score_one(
                    float(timestamps[cut + i]), float(values[cut + i]), learn=False
                )
                assert_points_close(alone, ahead.point(i))
            # the next point scores the same whether or not it is learned
            learned = detector.score_one(float(timestamps[cut]), float(values[cut]))
            assert_points_close(learned, ahead.point(0))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_non_finite_values_are_rejected(
        self, name: str, bad: float, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        detector.score(timestamps[:50], values[:50])
        before = json_state(detector)
        broken = values[50:60].copy()
        broken[4] = bad
        for learn in (True, False):
            with pytest.raises(InvalidInput):
                detector.score(timestamps[50:60], broken, learn=learn)
        with pytest.raises(InvalidInput):
            detector.score_one(float(timestamps[50]), bad)
        stamps = timestamps[50:60].copy()
        stamps[2] = bad
        with pytest.raises(InvalidInput):
            detector.score(stamps, values[50:60])
        assert json_state(detector) == before

    @pytest.mark.parametrize("kind", sorted(degenerate_series()))
    def test_degenerate_inputs_score_quietly(self, name: str, kind: str) -> None:
        values = degenerate_series()[kind]
        timestamps = 1_790_000_000.0 + np.arange(values.shape[0]) * 60.0
        detector = make(name)
        scores = detector.score(timestamps, values)  # warnings are errors under pytest
        assert np.all((scores.score >= 0.0) & (scores.score <= 1.0))
        for field in ("expected", "lower", "upper"):
            assert not np.any(np.isinf(getattr(scores, field))), field
        json.dumps(detector.get_state(), allow_nan=False)
        if kind == "constant" and name not in ("flatline", "static"):
            # nothing about an unchanging value is surprising (flatline's job aside)
            assert scores.score.max() < 0.99

    def test_farther_from_normal_scores_strictly_higher_and_never_one(self, name: str) -> None:
        # the ranking property: one threshold can still tell events apart by size
        timestamps, values = ordinary_series()
        warmed = make(name)
        warmed.score(timestamps, values)
        assert warmed.is_warm
        state = json.loads(json_state(warmed))
        last_scores = []
        for distance in EXCURSION_DISTANCES:
            probe = make(name)  # a fresh copy of the warmed detector for each distance
            probe.set_state(state)
            stretch = probe.score(*excursion(probe, timestamps, values, distance)).score
            assert np.all(stretch < 1.0), f"a score of 1 at distance {distance:g}"
            last_scores.append(float(stretch[-1]))
        # auto judges a point 10 noise units up against the local spread of the daily
        # cycle (about 0.86 here); from 30 units on it is an alert like everywhere
        nearest = 1 if name == "auto" else 0
        assert last_scores[nearest] > 0.9, "the nearest excursion is hardly surprising"
        assert last_scores[-1] > 0.9999, "the farthest excursion is not in the tail"
        ranked = dict(zip(EXCURSION_DISTANCES, last_scores, strict=True))
        assert np.all(np.diff(last_scores) > 0.0), ranked

    def test_unsorted_or_mismatched_batches_are_rejected(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        with pytest.raises(InvalidInput):
            detector.score(timestamps[:10][::-1], values[:10])
        with pytest.raises(InvalidInput):
            detector.score(timestamps[:10], values[:9])
        assert detector.n_seen == 0

    def test_seeded_runs_are_deterministic(
        self, name: str, series: tuple[np.ndarray, np.ndarray], whole_run: dict[str, Any]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        assert_scores_identical(detector.score(timestamps, values), whole_run[name]["scores"])
        assert json_state(detector) == json.dumps(
            whole_run[name]["state"], allow_nan=False, sort_keys=True
        )

    def test_inputs_are_not_mutated(self, name: str, series: tuple[np.ndarray, np.ndarray]) -> None:
        timestamps, values = series
        ts, vs = timestamps.copy(), values.copy()
        ts.setflags(write=False)
        vs.setflags(write=False)
        detector = make(name)
        detector.score(ts, vs)
        detector.score(ts[-20:], vs[-20:], learn=False)
        np.testing.assert_array_equal(ts, timestamps)
        np.testing.assert_array_equal(vs, values)
        as_lists = (timestamps[:30].tolist(), values[:30].tolist())
        copies = (list(as_lists[0]), list(as_lists[1]))
        make(name).score(*as_lists)
        assert as_lists == copies

    def test_empty_batch_is_a_no_op(self, name: str, series: tuple[np.ndarray, np.ndarray]) -> None:
        timestamps, values = series
        detector = make(name)
        detector.score(timestamps[:70], values[:70])
        before = json_state(detector)
        for learn in (True, False):
            assert len(detector.score([], [], learn=learn)) == 0
        assert json_state(detector) == before

    def test_unknown_parameter_is_refused_naming_it(self, name: str) -> None:
        params = {**CONTRACT_PARAMS.get(name, {}), "no_such_knob": 1}
        with pytest.raises(InvalidParams) as caught:
            create(name, params)
        assert caught.value.field == "no_such_knob"

    def test_params_read_back_and_rebuild_the_same_detector(self, name: str) -> None:
        detector = make(name)
        params = detector.get_params()
        json.dumps(params, allow_nan=False)
        assert create(name, params).get_params() == params

    def test_explanations_are_one_sentence(
        self, name: str, series: tuple[np.ndarray, np.ndarray]
    ) -> None:
        timestamps, values = series
        detector = make(name)
        scores = detector.score(timestamps, values)
        for i in (0, detector.warmup, 1100, 1151, 1215, 1315, 1399):
            i = min(i, values.shape[0] - 1)
            text = detector.explain(float(values[i]), scores.point(i))
            assert isinstance(text, str) and text.endswith(".") and "\n" not in text
            assert len(text) < 300
            assert "nan" not in text.lower().replace("n/a", "")
