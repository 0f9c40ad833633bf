"""The series selector of remote-write detectors: parsing and matching, as PromQL does."""

from __future__ import annotations

import pytest

from services.anomaly.remote_write.selector import SelectorError, parse_selector

API = {"__name__": "http_requests_total", "job": "api", "code": "500", "instance": "a:9100"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("http_requests_total", API, True),
        ("http_requests_total", {**API, "__name__": "http_requests"}, False),
        ('http_requests_total{job="api"}', API, True),
        ('http_requests_total{job="web"}', API, False),
        ('http_requests_total{job!="web"}', API, True),
        ('http_requests_total{job!="api"}', API, False),
        ('http_requests_total{code=~"5.."}', API, True),
        # anchored at both ends, like Prometheus
        ('http_requests_total{code=~"0"}', API, False),
        ('http_requests_total{code=~"5"}', API, False),
        ('http_requests_total{code!~"5.."}', API, False),
        ('http_requests_total{code!~"4.."}', API, True),
        ('{__name__=~"http_.*_total"}', API, True),
        ('{__name__!~"http_.*", job="api"}', API, False),
        ('{__name__="http_requests_total", job="api", code="500"}', API, True),
        # a missing label is the empty value
        ('http_requests_total{env=""}', API, True),
        ('http_requests_total{env!=""}', API, False),
        ('http_requests_total{env=~"prod|"}', API, True),
        # quoting: single quotes, back quotes (no escapes), escapes
        ("http_requests_total{job='api'}", API, True),
        ("http_requests_total{instance=~`a:\\d+`}", {**API, "instance": "a:9100"}, True),
        ('{job="a\\"b"}', {"job": 'a"b'}, True),
        ('{job="a\\nb"}', {"job": "a\nb"}, True),
        ('{job="\\u00e9"}', {"job": "é"}, True),
        # spaces and a trailing comma
        ('  up { job = "api" , } ', {"__name__": "up", "job": "api"}, True),
        ("up{}", {"__name__": "up"}, True),
        ("process:cpu:rate5m", {"__name__": "process:cpu:rate5m"}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "required"),
        ("   ", "required"),
        ('up{job="api"', "unclosed"),
        ('up{job="api}', "unterminated"),
        ("up{job=api}", "quoted"),
        ('up{job=="api"}', "quoted"),
        ('up{job~"api"}', "= != =~ !~"),
        ('up{1job="api"}', "label name"),
        ('up{job="a" code="5"}', "','"),
        ('up{job="a"} extra', "unexpected"),
        ('up job="a"', "'{'"),
        ('up{code=~"5(("}', "regular expression"),
        ('up{job="\\q"}', "escape"),
        ('{job=~".*"}', "empty string"),
        ('{job=""}', "empty string"),
        ("{}", "empty string"),
        ('up{__name__="down"}', "twice"),
        ("x" * 5000, "at most"),
        ("{" + ",".join(f'l{i}="v"' for i in range(40)) + "}", "matchers"),
    ],
)
def test_bad_selectors_say_why(text: str, says: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert says in str(caught.value)


def test_a_selector_is_all_of_its_matchers() -> None:
    selector = parse_selector('node_load1{instance=~"a.*", job!="test"}')
    assert [(m.name, m.op, m.value) for m in selector.matchers] == [
        ("__name__", "=", "node_load1"),
        ("instance", "=~", "a.*"),
        ("job", "!=", "test"),
    ]
    assert selector.matches({"__name__": "node_load1", "instance": "ab", "job": "prod"})
    assert not selector.matches({"__name__": "node_load1", "instance": "ab", "job": "test"})
    assert not selector.matches({"__name__": "node_load1", "instance": "ba", "job": "prod"})
