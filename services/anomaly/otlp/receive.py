"""OTLP data points stored and scored, and the ``ExportMetricsServiceResponse``.

The routed points (``route``) are fed to the ingest pipeline as one batch
(``ingest.routed.feed``: one transaction, all or nothing, a retry finds its points
stored and counts them as duplicates). The answer's ``partial_success`` reports,
as the OTLP spec wants, the data points the service refused although a detector
watches them: not finite, a timestamp out of range, labels a series cannot have,
and points that would start a series past their detector's ``max_series`` (counted
in ``nsentry_series_refused_total``, the others stored). Data points no detector
watches are accepted and dropped; histograms, exponential histograms and
summaries are skipped: neither is a rejection, the latter is said in
``error_message`` as a warning (with ``rejected_data_points`` 0 when nothing else
was refused).
"""

from __future__ import annotations

from collections import Counter

import asyncpg
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from services.anomaly.ingest.outcome import IngestOutcome
from services.anomaly.ingest.pipeline import Ingestor
from services.anomaly.ingest.routed import Point, feed
from services.anomaly.otlp.route import OUTCOMES, Routed, route, targets_of
from services.anomaly.otlp.source import SOURCE_TYPE
from services.anomaly.series import canonical, describe
from services.common.metrics import OTLP_DATA_POINTS

MAX_MESSAGE = 1000
_SAID = {
    "not_finite": "not finite (NaN or infinite)",
    "out_of_range": "with time_unix_nano missing or outside 1970-2200",
    "bad_labels": (
        "with labels a series cannot have (over 32, a name over 128 characters "
        "or a value over 1,024)"
    ),
}


def _points(n: int) -> str:
    return f"{n} data point{'' if n == 1 else 's'}"


def answer(routed: Routed, outcome: IngestOutcome | None) -> ExportMetricsServiceResponse:
    """The response: ``partial_success`` when a data point was refused or skipped."""
    refused = dict(routed.refused)
    past_max: list[str] = []
    for error in outcome.errors if outcome is not None else []:
        number = routed.origins[error["index"]]
        refused.setdefault(number, "max_series")
        past_max.append(
            f"detector {error['detector_id']!r}, new series {describe(canonical(error['labels']))}"
        )
    reasons = Counter(refused.values())
    said = [f"{_points(reasons[r])} {_SAID[r]}" for r in _SAID if reasons[r]]
    if reasons["max_series"]:
        said.append(
            f"{_points(reasons['max_series'])} past their detector's max_series "
            f"(first: {past_max[0]})"
        )
    skipped = routed.counts["unsupported_type"]
    if skipped:
        said.append(
            f"{_points(skipped)} of histograms, exponential histograms or summaries "
            "skipped: only gauge and sum data points are read"
        )
    response = ExportMetricsServiceResponse()
    if said:
        message = "; ".join(said)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        response.partial_success.rejected_data_points = len(refused)
        response.partial_success.error_message = message
    return response


def count(counts: Counter[str]) -> None:
    for outcome in OUTCOMES:
        if counts[outcome]:
            OTLP_DATA_POINTS.labels(outcome).inc(counts[outcome])


async def receive(
    ingestor: Ingestor, account: str, request: ExportMetricsServiceRequest
) -> ExportMetricsServiceResponse:
    """Store and score the data points of a request for the account's detectors."""

    def routed_by(rows: list[asyncpg.Record]) -> tuple[list[Point], Routed]:
        routed = route(request, targets_of(rows))
        return routed.points, routed

    outcome, _, routed = await feed(ingestor, account, SOURCE_TYPE, routed_by)
    count(routed.counts)
    return answer(routed, outcome)
