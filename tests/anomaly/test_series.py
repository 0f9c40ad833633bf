"""The pure series rules: canonical keys, group_by, how a series is written for people."""

from __future__ import annotations

import json

import pytest

from services.anomaly.series import (
    EMPTY,
    canonical,
    describe,
    labels_of,
    parse_selector,
    series_key,
)


def test_the_key_is_sorted_compact_json_whatever_the_order() -> None:
    a = canonical({"job": "api", "instance": "b"})
    assert a == canonical({"instance": "b", "job": "api"}) == '{"instance":"b","job":"api"}'
    assert labels_of(a) == {"instance": "b", "job": "api"}
    assert json.loads(a) == labels_of(a)


def test_no_labels_and_empty_values_are_the_empty_series() -> None:
    assert series_key(None, None) == series_key({}, ["instance"]) == EMPTY == "{}"
    assert canonical({"instance": ""}) == EMPTY  # as in Prometheus: empty = absent
    assert labels_of(EMPTY) == {}


def test_group_by_keeps_only_its_labels() -> None:
    labels = {"instance": "b", "pod": "p-7", "job": "api"}
    assert series_key(labels, None) == canonical(labels)  # null: every label
    assert series_key(labels, ["instance"]) == '{"instance":"b"}'
    assert series_key(labels, []) == EMPTY  # one series whatever the labels
    assert series_key(labels, ["zone"]) == EMPTY  # a missing label is no label


def test_non_ascii_values_are_kept_as_they_are() -> None:
    key = canonical({"city": "Zürich"})
    assert key == '{"city":"Zürich"}' and labels_of(key) == {"city": "Zürich"}


def test_a_series_is_described_as_prometheus_writes_it() -> None:
    assert describe('{"instance":"b","job":"api"}') == '{instance="b", job="api"}'
    assert describe(EMPTY) == "{}"


def test_label_selectors() -> None:
    assert parse_selector("instance=b") == {"instance": "b"}
    assert parse_selector("path=/a=b") == {"path": "/a=b"}  # the first = splits
    for bad in ("instance", "1x=b", "a-b=c", "=b"):
        with pytest.raises(ValueError):
            parse_selector(bad)
