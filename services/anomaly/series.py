"""PURE: series of a detector, named by their label sets.

A detector watches one or more series. A series is a label set written
canonically as its *key*: compact JSON with the keys sorted
(``{"instance":"b","job":"api"}``), the empty set ``{}`` for a plain
detector. The key is what the database stores (``np_anomaly_series.series_key``,
``np_anomaly_data_points.series_key``), what the dedup key of a page names,
and what ``labels_of`` turns back into the ``labels`` object of the API.

A point's labels make its series through the detector's ``group_by``: ``None``
keeps every label (each distinct label set is a series, as a Prometheus query
or a Grafana rule would have it), a list keeps only those names (``[]``: one
series whatever the labels). As in Prometheus, a label with an empty value is
the same as no label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import Field, StringConstraints

EMPTY = "{}"

# Prometheus' label-name rule (``__name__`` included: the metric name of a sample)
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LABEL_NAME = re.compile(LABEL_NAME_PATTERN)
MAX_LABELS = 32
MAX_NAME_LENGTH = 128
MAX_VALUE_LENGTH = 1024
MAX_SERIES_DEFAULT = 1000
MAX_SERIES_LIMIT = 100_000

LabelName = Annotated[
    str, StringConstraints(pattern=LABEL_NAME_PATTERN, min_length=1, max_length=MAX_NAME_LENGTH)
]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]
Labels = Annotated[
    dict[LabelName, LabelValue],
    Field(
        max_length=MAX_LABELS,
        description=(
            f"the series' labels: at most {MAX_LABELS}, names like Prometheus label names "
            f"({LABEL_NAME_PATTERN}, up to {MAX_NAME_LENGTH} characters), string values "
            f"(up to {MAX_VALUE_LENGTH}); the detector's `group_by` says which make its series"
        ),
        examples=[{"instance": "b"}],
    ),
]
GroupBy = Annotated[
    list[LabelName],
    Field(
        max_length=MAX_LABELS,
        description=(
            "the label names that make a series (one model per distinct value set); "
            "other labels are dropped. null (the default): every label; []: one series"
        ),
        examples=[["instance"]],
    ),
]


# json.dumps with these options builds an encoder per call; one, kept, encodes the same
_KEY_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical(labels: Mapping[str, str]) -> str:
    """The key of a label set (empty values dropped)."""
    items = sorted((k, v) for k, v in labels.items() if v != "")
    if not items:
        return EMPTY
    return _KEY_ENCODER.encode(dict(items))


def series_key(labels: Mapping[str, str] | None, group_by: Sequence[str] | None) -> str:
    """The key of the series a point with ``labels`` belongs to under ``group_by``."""
    if not labels:
        return EMPTY
    if group_by is None:
        return canonical(labels)
    return canonical({name: labels[name] for name in group_by if name in labels})


def labels_of(key: str) -> dict[str, str]:
    """The label set of a key (``{}`` for the empty series)."""
    if key == EMPTY:
        return {}
    labels: dict[str, str] = json.loads(key)
    return labels


def describe(key: str) -> str:
    """A series for people, as Prometheus writes it: ``{instance="b", job="api"}``."""
    labels = labels_of(key)
    return (
        "{" + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels.items()) + "}"
    )


def parse_selector(text: str) -> dict[str, str]:
    """``name=value`` (the ``label=`` query filter) as a one-label set; ValueError if not."""
    name, sep, value = text.partition("=")
    if not sep or not LABEL_NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError("expected name=value with a label name")
    return {name: value}  # a value longer than any label's matches no series
