"""OTLP requests built with opentelemetry-proto's messages, encoded as exporters do."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}

# (attributes, timestamp, value): an int value is sent as as_int, a float as as_double
DataPoint = tuple[Mapping[str, Any], datetime | int, float | int]


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(attributes(value))
        return out
    return AnyValue(string_value=str(value))


def attributes(values: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def nanos(at: datetime | int) -> int:
    return at if isinstance(at, int) else int(at.timestamp() * 1_000_000) * 1000


def metrics_request(
    resources: Iterable[tuple[Mapping[str, Any], Iterable[tuple[str, str, list[DataPoint]]]]],
) -> ExportMetricsServiceRequest:
    """Resources (attributes, metrics); each metric (name, kind, data points), kind one
    of gauge, sum, histogram, summary, exponential_histogram."""
    request = ExportMetricsServiceRequest()
    for resource_attributes, metrics in resources:
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(attributes(resource_attributes))
        sm = rm.scope_metrics.add()
        sm.scope.name = "nsentry-tests"
        for name, kind, points in metrics:
            metric = sm.metrics.add(name=name)
            data = getattr(metric, kind)
            if kind == "sum":
                data.is_monotonic = True
                data.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
            for attrs, at, value in points:
                dp = data.data_points.add(time_unix_nano=nanos(at))
                dp.attributes.extend(attributes(attrs))
                if kind in ("gauge", "sum"):
                    if isinstance(value, int):
                        dp.as_int = value
                    else:
                        dp.as_double = value
                elif kind == "histogram":
                    dp.count, dp.sum = 1, float(value)
                else:
                    dp.count = 1
    return request


def gauge(
    name: str, points: list[DataPoint], resource: Mapping[str, Any] | None = None
) -> ExportMetricsServiceRequest:
    return metrics_request([(resource or {}, [(name, "gauge", points)])])


def protobuf_body(request: ExportMetricsServiceRequest, *, gzipped: bool = False) -> bytes:
    raw = request.SerializeToString()
    return gzip.compress(raw) if gzipped else raw


def json_body(request: ExportMetricsServiceRequest) -> bytes:
    """OTLP/JSON: lowerCamelCase names, int64 as strings, enums as integers."""
    return json.dumps(json_format.MessageToDict(request, use_integers_for_enums=True)).encode()


def response_of(content: bytes, media: str) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    if media.startswith("application/json"):
        json_format.Parse(content, response)
    else:
        response.ParseFromString(content)
    return response
