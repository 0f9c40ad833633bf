"""Remote-write samples to detectors: the routing of ``POST /api/v1/write``.

Each sample goes to every enabled detector of the account whose
``metric_source`` is ``{"type": "remote_write", "match": <selector>}`` and whose
selector matches the series' labels (``__name__`` included). It is fed to the
same ``Ingestor`` as ``POST /api/v1/ingest``, as one batch of every detector's
points in one transaction (the ingestor locks the detector rows first, in id
order, then their series; all or nothing: a retried request finds its points
stored and counts them as duplicates).

A point carries the series' labels as received, except ``__name__``, which is
dropped unless the detector's ``group_by`` names it: the detector's selector
already says which metric it watches, so ``{instance="a"}`` is the series, not
``{__name__="up", instance="a"}``. (A detector whose selector matches several
metric names and that wants one series per metric names ``__name__`` in
``group_by``.) ``group_by`` then picks the series as for any point.

Skipped, and counted in ``nsentry_remote_write_samples_total{outcome}``:
staleness markers (``stale``), other NaN and infinities (``not_finite``),
timestamps outside 1970-2200 (``out_of_range``), samples no detector selects
(``no_detector``); the others count as ``routed``.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.anomaly.ingest.pipeline import Ingestor
from services.anomaly.remote_write.proto.remote_pb2 import WriteRequest
from services.anomaly.remote_write.selector import Selector, SelectorError, parse_selector
from services.common.db import tenant_transaction
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.metrics import REMOTE_WRITE_SAMPLES

# Prometheus' staleness marker: one NaN bit pattern (value.StaleNaN)
STALE_NAN_BITS = 0x7FF0000000000002
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = int((datetime(2200, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds() * 1000)

SOURCES_SQL = """
SELECT id, metric_source, group_by
  FROM np_anomaly_detectors
 WHERE source_account_id = $1 AND enabled AND metric_source->>'type' = 'remote_write'
 ORDER BY id
"""


@dataclass(frozen=True)
class Target:
    """A remote-write detector: its id, selector and whether it keeps ``__name__``."""

    detector_id: str
    selector: Selector
    keep_name: bool


@dataclass(frozen=True)
class Point:
    """A sample as the ingestor takes it (``ingest.outcome.PointLike``)."""

    detector_id: str
    timestamp: datetime
    value: float
    labels: dict[str, str] | None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def targets_of(rows: list[asyncpg.Record]) -> list[Target]:
    """The detectors of the rows; one whose stored selector no longer parses (written
    directly in the table) selects nothing rather than failing the others."""
    targets = []
    for row in rows:
        source = _json(row["metric_source"]) or {}
        group_by = _json(row["group_by"])
        try:
            selector = parse_selector(source.get("match"))
        except SelectorError:
            continue
        keep = group_by is not None and "__name__" in group_by
        targets.append(Target(row["id"], selector, keep))
    return targets


async def load_targets(ingestor: Ingestor, account: str) -> list[Target]:
    async with tenant_transaction(ingestor.pool, account) as conn:
        rows = await conn.fetch(SOURCES_SQL, account)
    return targets_of(rows)


def _skip_reason(ms: int, value: float) -> str | None:
    if not math.isfinite(value):
        if math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == (
            STALE_NAN_BITS
        ):
            return "stale"
        return "not_finite"
    if ms < 0 or ms >= _MAX_MS:
        return "out_of_range"
    return None


def route(request: WriteRequest, targets: list[Target]) -> tuple[list[Point], dict[str, int]]:
    """The points for the detectors, and how many samples had each outcome."""
    counts = {"routed": 0, "no_detector": 0, "stale": 0, "not_finite": 0, "out_of_range": 0}
    points: list[Point] = []
    for series in request.timeseries:
        labels = {lb.name: lb.value for lb in series.labels}
        chosen = [t for t in targets if t.selector.matches(labels)]
        if not chosen:
            counts["no_detector"] += len(series.samples)
            continue
        without_name = {k: v for k, v in labels.items() if k != "__name__"}
        for sample in series.samples:
            value = sample.value
            reason = _skip_reason(sample.timestamp, value)
            if reason is not None:
                counts[reason] += 1
                continue
            counts["routed"] += 1
            at = _EPOCH + timedelta(milliseconds=sample.timestamp)
            for target in chosen:
                kept = labels if target.keep_name else without_name
                points.append(Point(target.detector_id, at, value, dict(kept)))
    return points, counts


def count(counts: dict[str, int]) -> None:
    for outcome, n in counts.items():
        if n:
            REMOTE_WRITE_SAMPLES.labels(outcome).inc(n)


async def receive(ingestor: Ingestor, account: str, request: WriteRequest) -> int:
    """Store and score the samples of a request for the account's detectors; returns
    how many points were fed. A detector deleted or disabled between reading the
    selectors and locking the rows (404, 409, 422 from the ingestor) is dropped by
    reading the selectors again, once."""
    for attempt in range(2):
        targets = await load_targets(ingestor, account)
        points, counts = route(request, targets)
        if not points:
            count(counts)
            return 0
        try:
            await ingestor.ingest(account, points, batch=True)
        except (NotFound, Conflict, ValidationFailed):
            if attempt:
                raise
            continue
        count(counts)
        return len(points)
    raise AssertionError("unreachable")
