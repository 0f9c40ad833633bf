"""PURE: OTLP metric data points to detectors, the routing of ``POST /v1/metrics``.

A gauge or sum data point goes to every enabled detector of the account whose
``metric_source`` is ``{"type": "otlp", "metric": <its metric's name>, "match":
{...}}`` and whose label filters hold for its labels. Its labels are the
resource's attributes and the point's own (the point's win on a clash), with
names translated to label names (``source.label_name``: ``service.name`` ->
``service_name``; two attributes of one level that translate to the same name
have their values joined with ``;`` in the order of their names, as Prometheus
does) and values as text (``labels.text``). The detector's ``group_by`` then
picks the series, as for any point.

A sum's value is stored as sent: a cumulative monotonic sum (a counter) is its
running total, not a rate; export delta temporality for a per-interval count.

Each data point has one outcome (``OUTCOMES``, counted on ``/metrics``):
``routed`` (fed to at least one detector), ``no_detector`` (no detector watches
it: dropped), ``no_value`` (flagged "no recorded value" or without a value:
skipped, like Prometheus' staleness markers), ``unsupported_type`` (histogram,
exponential histogram, summary: skipped), and three that refuse a point a
detector wanted, reported as rejected in the answer's ``partial_success``:
``not_finite`` (NaN or infinite), ``out_of_range`` (``time_unix_nano`` missing
or outside 1970-2200), ``bad_labels`` (the labels a detector would keep: over 32,
a name over 128 characters, a value over 1,024).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import DataPointFlags

from services.anomaly.ingest.routed import EPOCH, MAX_MS, Point, json_value
from services.anomaly.otlp.labels import text
from services.anomaly.otlp.source import OtlpSource, label_name, parse_source
from services.anomaly.series import MAX_LABELS, MAX_NAME_LENGTH, MAX_VALUE_LENGTH

OUTCOMES = (
    "routed",
    "no_detector",
    "no_value",
    "unsupported_type",
    "not_finite",
    "out_of_range",
    "bad_labels",
)
REJECTED = ("not_finite", "out_of_range", "bad_labels")
NUMBER_KINDS = ("gauge", "sum")
OTHER_KINDS = ("histogram", "exponential_histogram", "summary")
NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


@dataclass(frozen=True)
class Target:
    """An otlp detector: its id, its source and its ``group_by``."""

    detector_id: str
    source: OtlpSource
    group_by: list[str] | None


@dataclass
class Routed:
    """What a request came to: the points for the ingestor, the data point each
    came from (``origins``, parallel to ``points``), the outcome of every data point,
    the data points some detector could not take (``refused``: number -> reason)."""

    points: list[Point] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    refused: dict[int, str] = field(default_factory=dict)


def targets_of(rows: Iterable[Mapping[str, Any]]) -> list[Target]:
    """The detectors of the rows; one whose stored source no longer parses (written
    directly in the table) takes nothing rather than failing the others."""
    targets = []
    for row in rows:
        source = json_value(row["metric_source"]) or {}
        try:
            parsed = parse_source(source.get("metric"), source.get("match"))
        except ValueError:
            continue
        targets.append(Target(row["id"], parsed, json_value(row["group_by"])))
    return targets


def labels_of(attributes: Iterable[KeyValue]) -> dict[str, str]:
    """One level's attributes as labels (names translated, values as text)."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for kv in attributes:
        if kv.key:
            grouped.setdefault(label_name(kv.key), []).append((kv.key, text(kv.value)))
    return {name: ";".join(value for _, value in sorted(pairs)) for name, pairs in grouped.items()}


def kept(labels: Mapping[str, str], group_by: list[str] | None) -> dict[str, str]:
    """The labels a detector keeps (those ``group_by`` names; every one if null)."""
    if group_by is None:
        return dict(labels)
    return {name: labels[name] for name in group_by if name in labels}


def fits(labels: Mapping[str, str]) -> bool:
    """Whether a label set is one a series can have (``series.Labels``' bounds)."""
    non_empty = [(k, v) for k, v in labels.items() if v != ""]
    return len(non_empty) <= MAX_LABELS and all(
        len(k) <= MAX_NAME_LENGTH and len(v) <= MAX_VALUE_LENGTH for k, v in non_empty
    )


def _reason(time_unix_nano: int, value: float) -> str | None:
    if not math.isfinite(value):
        return "not_finite"
    if time_unix_nano <= 0 or time_unix_nano // 1_000_000 >= MAX_MS:
        return "out_of_range"
    return None


def route(request: ExportMetricsServiceRequest, targets: list[Target]) -> Routed:
    """The points for the detectors, and the outcome of every data point."""
    by_metric: dict[str, list[Target]] = {}
    for target in targets:
        by_metric.setdefault(target.source.metric, []).append(target)
    routed = Routed()
    number = 0  # each data point's number, in the order of the request
    for resource_metrics in request.resource_metrics:
        resource = labels_of(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data_points = getattr(metric, kind).data_points
                if kind not in NUMBER_KINDS:
                    routed.counts["unsupported_type"] += len(data_points)
                    number += len(data_points)
                    continue
                watching = by_metric.get(metric.name, [])
                for dp in data_points:
                    _route_point(routed, number, dp, resource, watching)
                    number += 1
    return routed


def _route_point(
    routed: Routed, number: int, dp: Any, resource: dict[str, str], watching: list[Target]
) -> None:
    labels = {**resource, **labels_of(dp.attributes)} if dp.attributes else resource
    chosen = [t for t in watching if t.source.matches(labels)]
    if not chosen:
        routed.counts["no_detector"] += 1
        return
    which = dp.WhichOneof("value")
    if which is None or dp.flags & NO_RECORDED_VALUE:
        routed.counts["no_value"] += 1
        return
    value = float(dp.as_int if which == "as_int" else dp.as_double)
    reason = _reason(dp.time_unix_nano, value)
    if reason is not None:
        routed.counts[reason] += 1
        routed.refused[number] = reason
        return
    at = EPOCH + timedelta(microseconds=dp.time_unix_nano // 1000)
    fed = False
    for target in chosen:
        own = kept(labels, target.group_by)
        if not fits(own):
            routed.refused[number] = "bad_labels"
            continue
        routed.points.append(Point(target.detector_id, at, value, own))
        routed.origins.append(number)
        fed = True
    routed.counts["routed" if fed else "bad_labels"] += 1
