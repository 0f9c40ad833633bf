"""The pure side of OTLP: sources, attributes as labels, routing and the answer."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from services.anomaly.ingest.outcome import IngestOutcome
from services.anomaly.otlp.labels import text
from services.anomaly.otlp.receive import answer
from services.anomaly.otlp.route import Target, labels_of, route
from services.anomaly.otlp.source import OtlpSource, label_name, parse_source
from tests.anomaly.otlp.support import any_value, gauge, metrics_request

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def target(
    detector_id: str,
    metric: str,
    match: dict[str, str] | None = None,
    group_by: list[str] | None = None,
) -> Target:
    return Target(detector_id, parse_source(metric, match), group_by)


def test_attribute_names_become_label_names() -> None:
    assert label_name("service.name") == "service_name"
    assert label_name("http.route") == "http_route"
    assert label_name("k8s-pod/name") == "k8s_pod_name"
    assert label_name("1st") == "key_1st"
    assert label_name("instance") == "instance"
    assert label_name("héllo") == "h_llo"


def test_attribute_values_become_text() -> None:
    assert text(any_value("b")) == "b"
    assert text(any_value(True)) == "true"
    assert text(any_value(200)) == "200"
    assert text(any_value(0.5)) == "0.5"
    assert text(any_value(b"\x00\x01")) == "AAE="
    assert text(any_value(["a", 1, False])) == '["a",1,false]'
    assert text(any_value({"k": "v", "n": 2})) == '{"k":"v","n":2}'


def test_labels_of_joins_clashing_names_in_key_order() -> None:
    kvs = [
        KeyValue(key="a_b", value=any_value("second")),
        KeyValue(key="a.b", value=any_value("first")),
        KeyValue(key="", value=any_value("dropped")),
    ]
    assert labels_of(kvs) == {"a_b": "first;second"}


def test_sources_are_validated_with_clear_messages() -> None:
    assert parse_source("m", None) == OtlpSource("m", {})
    assert parse_source("m", {"service_name": "x"}).match == {"service_name": "x"}
    with pytest.raises(ValueError, match="metric_source.metric: an otlp source needs"):
        parse_source(None, None)
    with pytest.raises(ValueError, match="metric_source.metric: at most 255"):
        parse_source("m" * 256, None)
    with pytest.raises(ValueError, match="an object of label filters"):
        parse_source("m", 'up{job="x"}')
    with pytest.raises(ValueError, match=r"'service\.name' is not a label name.*'service_name'"):
        parse_source("m", {"service.name": "x"})
    with pytest.raises(ValueError, match=r"match\.code: the exact value, a string"):
        parse_source("m", {"code": 200})


def test_point_attributes_win_over_the_resource_and_filters_select() -> None:
    request = metrics_request(
        [
            (
                {"service.name": "api", "instance": "from-resource"},
                [
                    (
                        "latency",
                        "gauge",
                        [
                            ({"instance": "a"}, T0, 1.0),
                            ({"instance": "b", "service.name": "web"}, T0, 2),
                        ],
                    ),
                    ("other", "gauge", [({}, T0, 3.0)]),
                ],
            )
        ]
    )
    targets = [
        target("api-only", "latency", {"service_name": "api"}, ["instance"]),
        target("all", "latency"),
        target("wrong-metric", "latencies"),
    ]
    routed = route(request, targets)
    got = sorted((p.detector_id, p.value, tuple(sorted(p.labels.items()))) for p in routed.points)
    assert got == [
        ("all", 1.0, (("instance", "a"), ("service_name", "api"))),
        ("all", 2.0, (("instance", "b"), ("service_name", "web"))),
        ("api-only", 1.0, (("instance", "a"),)),
    ]
    assert routed.counts == Counter({"routed": 2, "no_detector": 1})
    assert all(p.timestamp == T0 for p in routed.points)
    assert routed.refused == {}


def test_empty_filter_value_means_the_label_is_absent() -> None:
    request = gauge("m", [({"env": "prod"}, T0, 1.0), ({}, T0 + timedelta(seconds=1), 2.0)])
    routed = route(request, [target("no-env", "m", {"env": ""})])
    assert [p.value for p in routed.points] == [2.0]


def test_refused_skipped_and_unsupported_points_are_counted() -> None:
    big = {f"l{i}": "v" for i in range(40)}
    request = metrics_request(
        [
            (
                {},
                [
                    (
                        "m",
                        "gauge",
                        [
                            ({"i": "nan"}, T0, math.nan),
                            ({"i": "inf"}, T0, math.inf),
                            ({"i": "zero-time"}, 0, 1.0),
                            ({"i": "future"}, datetime(2300, 1, 1, tzinfo=UTC), 1.0),
                            (big, T0, 1.0),
                            ({"i": "ok"}, T0, 5.0),
                        ],
                    ),
                    ("m", "histogram", [({}, T0, 1.0), ({}, T0, 2.0)]),
                    ("m", "summary", [({}, T0, 1.0)]),
                ],
            )
        ]
    )
    # a detector keeping every label cannot take 40 labels; one grouping by i can
    routed = route(request, [target("every", "m"), target("by-i", "m", None, ["i"])])
    assert routed.counts == Counter(
        {"not_finite": 2, "out_of_range": 2, "routed": 2, "unsupported_type": 3}
    )
    assert routed.refused == {
        0: "not_finite",
        1: "not_finite",
        2: "out_of_range",
        3: "out_of_range",
        4: "bad_labels",
    }
    assert sorted((p.detector_id, p.value) for p in routed.points) == [
        ("by-i", 1.0),
        ("by-i", 5.0),
        ("every", 5.0),
    ]
    response = answer(routed, None)
    assert response.partial_success.rejected_data_points == 5
    message = response.partial_success.error_message
    assert "2 data points not finite" in message
    assert "2 data points with time_unix_nano missing or outside 1970-2200" in message
    assert "1 data point with labels a series cannot have" in message
    assert "3 data points of histograms" in message


def test_the_answer_names_max_series_refusals_and_only_warns_for_skipped_types() -> None:
    request = gauge("m", [({"i": "a"}, T0, 1.0), ({"i": "b"}, T0, 2.0)])
    routed = route(request, [target("d", "m", None, ["i"])])
    outcome = IngestOutcome(
        accepted=1, refused=1, errors=[{"index": 1, "detector_id": "d", "labels": {"i": "b"}}]
    )
    response = answer(routed, outcome)
    assert response.partial_success.rejected_data_points == 1
    assert (
        "1 data point past their detector's max_series (first: detector 'd', new series {i=\"b\"})"
        in (response.partial_success.error_message)
    )
    clean = answer(route(request, [target("d", "m")]), IngestOutcome(accepted=2))
    assert not clean.HasField("partial_success")
    only_skipped = metrics_request([({}, [("h", "histogram", [({}, T0, 1.0)])])])
    warned = answer(route(only_skipped, []), None)
    assert warned.partial_success.rejected_data_points == 0
    assert "only gauge and sum" in warned.partial_success.error_message
