"""PURE: an ``otlp`` metric source, ``{"type": "otlp", "metric": <name>, "match": {...}}``.

``metric`` is the OTLP metric name exactly as the sender writes it
(``http.server.active_requests``). ``match`` (optional) filters the data points
by their labels: label name -> exact value, every filter must hold; a filter
with the empty value holds when the label is absent (as in Prometheus, an empty
label is no label). The names are *label* names, the OTLP attribute names as
``labels.label_name`` translates them (``service.name`` -> ``service_name``),
because they are what the series' labels and ``group_by`` use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.anomaly.series import LABEL_NAME, MAX_LABELS, MAX_NAME_LENGTH, MAX_VALUE_LENGTH

SOURCE_TYPE = "otlp"
MAX_METRIC_LENGTH = 255


@dataclass(frozen=True)
class OtlpSource:
    metric: str
    match: dict[str, str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(name, "") == value for name, value in self.match.items())


def parse_source(metric: Any, match: Any) -> OtlpSource:
    """The source of a ``metric_source``'s fields; ValueError naming the field if not."""
    if not isinstance(metric, str) or not metric:
        raise ValueError(
            "metric_source.metric: an otlp source needs the OTLP metric name it watches, "
            'e.g. {"type": "otlp", "metric": "http.server.active_requests"}'
        )
    if len(metric) > MAX_METRIC_LENGTH:
        raise ValueError(f"metric_source.metric: at most {MAX_METRIC_LENGTH} characters")
    if match is None:
        return OtlpSource(metric, {})
    if not isinstance(match, dict):
        raise ValueError(
            "metric_source.match: an otlp source's match is an object of label filters, "
            'label name -> exact value, e.g. {"service_name": "checkout"}'
        )
    if len(match) > MAX_LABELS:
        raise ValueError(f"metric_source.match: at most {MAX_LABELS} label filters")
    for name, value in match.items():
        if len(name) > MAX_NAME_LENGTH or not LABEL_NAME.match(name):
            hint = label_name(name)
            raise ValueError(
                f"metric_source.match: {name[:140]!r} is not a label name "
                "([a-zA-Z_][a-zA-Z0-9_]*); OTLP attribute names become labels with every "
                "other character replaced by _"
                + (f" (here {hint!r})" if hint and len(hint) <= MAX_NAME_LENGTH else "")
            )
        if not isinstance(value, str):
            raise ValueError(
                f"metric_source.match.{name}: the exact value, a string (attribute values "
                'that are not strings are matched as their text, e.g. "200", "true")'
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"metric_source.match.{name}: at most {MAX_VALUE_LENGTH} characters")
    return OtlpSource(metric, dict(match))


def label_name(key: str) -> str:
    """An OTLP attribute name as a label name, as Prometheus translates them: every
    character other than a letter, a digit or ``_`` becomes ``_``, and a leading digit
    gets the prefix ``key_`` (``service.name`` -> ``service_name``, ``1x`` -> ``key_1x``)."""
    name = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) else "_" for c in key)
    if name[:1].isdigit():
        name = "key_" + name
    return name
