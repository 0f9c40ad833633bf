"""The ingest body: one validation from the bytes, errors worded for the client."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.anomaly.ingest.models import MAX_BATCH
from services.anomaly.ingest.parse import parse_ingest
from services.common.errors import ApiError

TS = "2026-11-23T09:00:00Z"


def point(i: int = 0, **changes: Any) -> dict[str, Any]:
    return {"detector_id": "d1", "value": float(i), "timestamp": TS, **changes}


def refusal(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_ingest(body)
    return caught.value


def test_a_single_point_and_a_batch() -> None:
    points, batch = parse_ingest(json.dumps(point(7)).encode())
    assert not batch and [(p.detector_id, p.value) for p in points] == [("d1", 7.0)]
    points, batch = parse_ingest(json.dumps({"points": [point(1), point(2)]}).encode())
    assert batch and [p.value for p in points] == [1.0, 2.0]


def test_a_point_named_points_is_still_a_point() -> None:
    points, batch = parse_ingest(json.dumps(point(detector_id="points")).encode())
    assert not batch and points[0].detector_id == "points"


def test_over_the_batch_limit_is_413_even_with_bad_points() -> None:
    many = [point(i) for i in range(MAX_BATCH + 1)]
    many[3] = point(value="x")
    error = refusal(json.dumps({"points": many}).encode())
    assert error.status == 413
    assert error.details == {"points": MAX_BATCH + 1, "max": MAX_BATCH}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{", 400, "body is not valid JSON: EOF while parsing an object at line 1 column 1"),
        (b"", 422, "body: expected a point"),
        (b"[1]", 422, "body: expected a point"),
        (b'{"points": [], "x": 1}', 422, "x: unexpected field"),
        (b'{"points": 3}', 422, "points: must be a list of points"),
        (json.dumps({"points": [point(), point(value="x")]}).encode(), 422, "points.1.value: "),
        (json.dumps({"points": [point(zz=1)]}).encode(), 422, "points.0.zz: Extra inputs"),
        (json.dumps(point(timestamp="2026-11-23T09:00:00")).encode(), 422, "timestamp: "),
    ],
)
def test_refusals_name_what_is_wrong(body: bytes, status: int, message: str) -> None:
    error = refusal(body)
    assert error.status == status
    assert error.message.startswith(message), error.message
