"""PURE: the poller's windows, due times and answers (no database, no Prometheus)."""

from __future__ import annotations

import numpy as np
import pytest

from services.anomaly.detectors.base import Scores
from services.anomaly.prometheus_pull.plan import (
    MAX_POINTS,
    AnswerError,
    Window,
    next_due,
    next_window,
    points_of,
)
from services.anomaly.prometheus_pull.source import MASK, Secrets, pull_source, split_secrets
from services.anomaly.thresholds import apply_one, parse_thresholds

NOW = 1_800_000_030.5  # a multiple of 60 plus 30.5 s


def test_the_first_poll_backfills_the_lookback_on_the_step_grid() -> None:
    w = next_window(None, None, NOW, 60, 3600)
    assert w is not None
    assert w.start % 60 == 0 and w.last % 60 == 0
    assert w.start == 1_800_000_000 - 3600 + 60 and w.last == 1_800_000_000 - 60
    assert w.quiet_until == w.last and not w.behind  # every backfilled point is quiet


def test_later_polls_start_one_step_after_the_position_and_page() -> None:
    position = 1_800_000_000 - 120
    w = next_window(position, position - 600, NOW, 60, 3600)
    assert w == Window(
        start=position + 60, last=1_800_000_000 - 60, step=60, quiet_until=None, behind=False
    )
    # nothing due until the instant after the position is one step old
    assert next_window(w.last, None, NOW, 60, 3600) is None
    assert next_due(w.last, NOW, 60) == w.last + 120
    assert next_window(w.last, None, w.last + 120, 60, 3600) is not None
    assert next_window(w.last, None, w.last + 119.9, 60, 3600) is None


def test_consecutive_windows_cover_every_instant_once() -> None:
    position, seen, now = None, [], NOW
    backfill = None
    for _ in range(50):
        now += 37.3
        w = next_window(position, backfill, now, 60, 600)
        if w is None:
            continue
        if position is None:
            backfill = w.quiet_until
        seen.extend(range(w.start, w.last + 1, 60))
        position = w.last
    assert seen == sorted(set(seen)) and all(
        b - a == 60 for a, b in zip(seen, seen[1:], strict=False)
    )


def test_a_long_range_is_cut_under_prometheus_points_limit() -> None:
    position = NOW - 30_000  # 30,000 one-second steps behind
    w = next_window(position, None, NOW, 1, 86_400)
    assert w is not None and w.instants == MAX_POINTS and w.behind
    assert next_due(w.last, NOW, 1, behind=w.behind) == NOW  # the next chunk at once
    w2 = next_window(w.last, None, NOW, 1, 86_400)
    assert w2 is not None and w2.start == w.last + 1


def test_a_backfill_in_chunks_stays_quiet_up_to_its_end() -> None:
    first = next_window(None, None, NOW, 1, 20_000)
    assert first is not None and first.behind and first.quiet_until is not None
    second = next_window(first.last, first.quiet_until, NOW, 1, 20_000)
    assert second is not None and second.quiet_until == first.quiet_until


def test_catching_up_never_goes_further_back_than_the_lookback() -> None:
    w = next_window(NOW - 100_000, None, NOW, 60, 3600)
    assert w is not None and w.start >= NOW - 3600


def test_step_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next_window(None, None, NOW, 0, 60)


def _answer(*series: tuple[dict[str, str], list[list[object]]]) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": m, "values": v} for m, v in series],
        },
    }


def test_points_of_an_answer_keep_labels_and_skip_nan_and_infinities() -> None:
    w = Window(100, 160, 60, quiet_until=None, behind=False)
    body = _answer(
        ({"__name__": "up", "instance": "a"}, [[100, "1"], [160, "NaN"]]),
        ({"__name__": "up", "instance": "b"}, [[100, "+Inf"], [160, "2.5"], [220, "3"]]),
    )
    pulled = points_of("d", body, w, keep_name=False)
    assert [(p.labels, p.timestamp.timestamp(), p.value) for p in pulled.points] == [
        ({"instance": "a"}, 100.0, 1.0),
        ({"instance": "b"}, 160.0, 2.5),
    ]
    assert pulled.skipped == {"not_finite": 2, "outside": 1} and pulled.series == 2
    kept = points_of("d", body, w, keep_name=True)
    assert kept.points[0].labels == {"__name__": "up", "instance": "a"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "bad_data"),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, "vector"),
        ({"data": {}}, "not a Prometheus API answer"),
        ({"status": "success", "data": {"resultType": "matrix", "result": [{}]}}, "metric"),
        ([], "not a Prometheus API answer"),
    ],
)
def test_answers_that_are_no_range_vector_are_errors(body: object, says: str) -> None:
    with pytest.raises(AnswerError, match=says):
        points_of("d", body, Window(0, 60, 60, None, False), keep_name=False)


def test_secrets_are_split_masked_and_kept_when_sent_back_masked() -> None:
    stored, secrets = split_secrets(
        {"type": "prometheus", "url": "u", "query": "q", "bearer": "t", "headers": {"X-A": "v"}}
    )
    assert stored["bearer"] == MASK and stored["headers"] == {"X-A": MASK}
    assert secrets == Secrets("t", {"X-A": "v"})
    again = Secrets(MASK, {"x-a": MASK, "X-B": "new"}).merged(secrets)
    assert again == Secrets("t", {"x-a": "v", "X-B": "new"})
    assert Secrets(MASK, {"X-C": MASK}).merged(None) == Secrets(None, {})


def test_a_backfilled_anomaly_pages_nobody_but_a_live_one_does() -> None:
    policy = parse_thresholds({"score": 0.9, "page_max_age_seconds": None})
    quiet = apply_one(policy, 100.0, 5.0, 1.0, 0.0, None, learn=True, quiet_until=100.0)
    assert quiet.is_anomaly and not quiet.page
    live = apply_one(policy, 101.0, 5.0, 1.0, 0.0, None, learn=True, quiet_until=100.0)
    assert live.is_anomaly and live.page
    zero = np.zeros(2)
    scores = Scores(score=np.ones(2), expected=zero, lower=zero - 1, upper=zero + 1)
    batch = policy.apply([50.0, 4000.0], [5.0, 5.0], scores, None, quiet_until=100.0)
    assert batch.page.tolist() == [False, True]


@pytest.mark.parametrize(
    "stored",
    [
        {"type": "prometheus", "query": "up"},
        {"type": "prometheus", "url": "http://p", "query": 5},
        {"type": "prometheus", "url": "http://p", "query": "up", "step_seconds": -1},
        {"type": "prometheus", "url": "http://p", "query": "up", "step_seconds": "x"},
    ],
)
def test_a_source_written_around_the_api_is_refused_by_the_poller(stored: dict) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        pull_source(stored, None, None)
