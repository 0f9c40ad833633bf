"""Remote-write samples to detectors: the routing of ``POST /api/v1/write``.

Each sample goes to every enabled detector of the account whose
``metric_source`` is ``{"type": "remote_write", "match": <selector>}`` and whose
selector matches the series' labels (``__name__`` included). It is fed
(``ingest.routed.feed``) to the same ``Ingestor`` as ``POST /api/v1/ingest``, as
one batch of every detector's points in one transaction, with the other requests
drained with it (``inbox``; all or nothing: a retried request finds its points
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

Past a detector's ``max_series``, the points of new series are refused (counted in
``nsentry_series_refused_total``, and logged with the series named) and every other
point is stored. The request was answered when it was accepted (``inbox``), so the
refusal is no answer of its own.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.anomaly.ingest.outcome import IngestOutcome
from services.anomaly.ingest.pipeline import BeforeCommit, Ingestor
from services.anomaly.ingest.routed import Point, at_ms, feed, in_range, json_value
from services.anomaly.remote_write.decode import Decoded, Labels
from services.anomaly.remote_write.selector import Selector, SelectorError, parse_selector
from services.common.metrics import REMOTE_WRITE_SAMPLES

log = logging.getLogger("nsentry.anomaly.remote_write")

isfinite = math.isfinite
new_tuple = tuple.__new__
SOURCE_TYPE = "remote_write"
REFUSED_LISTED = 20  # series named in a max_series log line
# Prometheus' staleness marker: one NaN bit pattern (value.StaleNaN)
STALE_NAN_BITS = 0x7FF0000000000002


@dataclass(frozen=True)
class Target:
    """A remote-write detector: its id, selector and whether it keeps ``__name__``."""

    detector_id: str
    selector: Selector
    keep_name: bool


def targets_of(rows: list[asyncpg.Record]) -> list[Target]:
    """The detectors of the rows; one whose stored selector no longer parses (written
    directly in the table) selects nothing rather than failing the others."""
    targets = []
    for row in rows:
        source = json_value(row["metric_source"]) or {}
        group_by = json_value(row["group_by"])
        try:
            selector = parse_selector(source.get("match"))
        except SelectorError:
            continue
        keep = group_by is not None and "__name__" in group_by
        targets.append(Target(row["id"], selector, keep))
    return targets


def _skip_reason(value: float) -> str:
    """Why a sample not finite or out of range is skipped (its outcome counted)."""
    if math.isfinite(value):
        return "out_of_range"
    if math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS:
        return "stale"
    return "not_finite"


def route(requests: Sequence[Decoded], targets: list[Target]) -> tuple[list[Point], dict[str, int]]:
    """The points of the requests (in order) for the detectors, and how many samples had
    each outcome.

    Prometheus sends one ``TimeSeries`` per sample, its labels repeated: the
    detectors of a label set are found once per batch, and its points share one
    labels mapping per detector (read-only from here on)."""
    counts = {"routed": 0, "no_detector": 0, "stale": 0, "not_finite": 0, "out_of_range": 0}
    points: list[Point] = []
    known: dict[Labels, list[tuple[str, dict[str, str]]]] = {}
    stamps: dict[int, datetime] = {}  # a scrape's samples share their timestamp
    routed = 0
    every = (
        pair
        for decoded in requests
        for pair in zip(decoded.request.timeseries, decoded.labels, strict=True)
    )
    for series, pairs in every:
        chosen = known.get(pairs)
        if chosen is None:
            labels = dict(pairs)
            without_name = {k: v for k, v in pairs if k != "__name__"}
            chosen = known[pairs] = [
                (t.detector_id, labels if t.keep_name else without_name)
                for t in targets
                if t.selector.matches(labels)
            ]
        if not chosen:
            counts["no_detector"] += len(series.samples)
            continue
        for sample in series.samples:
            value, ms = sample.value, sample.timestamp
            if not (isfinite(value) and in_range(ms)):
                counts[_skip_reason(value)] += 1
                continue
            routed += 1
            at = stamps.get(ms)
            if at is None:
                at = stamps[ms] = at_ms(ms)
            for detector_id, kept in chosen:
                # the tuple built directly (what Point(...) does, without its Python-level
                # __new__: a batch routes tens of thousands of points)
                points.append(new_tuple(Point, (detector_id, at, value, kept)))
    counts["routed"] = routed
    return points, counts


def count(counts: dict[str, int]) -> None:
    for outcome, n in counts.items():
        if n:
            REMOTE_WRITE_SAMPLES.labels(outcome).inc(n)


def refusal(outcome: IngestOutcome) -> str:
    """What is logged when points were refused past ``max_series`` (the rest stored):
    how many, and the series refused (each once, the first ``REFUSED_LISTED``)."""
    series: list[str] = []
    seen: set[tuple[str, str]] = set()
    for error in outcome.errors:
        key = (error["detector_id"], json.dumps(error["labels"], sort_keys=True))
        if key not in seen:
            seen.add(key)
            series.append(f"{key[0]} {key[1]}")
    listed = ", ".join(series[:REFUSED_LISTED])
    more = len(series) - REFUSED_LISTED
    return (
        f"{outcome.refused} point(s) refused past max_series, of {len(series)} new "
        f"series: {listed}"
        + (f" and {more} more" if more > 0 else "")
        + f"; the other {outcome.accepted} point(s) were stored"
    )


async def receive_batch(
    ingestor: Ingestor,
    account: str,
    requests: Sequence[Decoded],
    *,
    before_commit: BeforeCommit | None = None,
) -> int:
    """Store and score the samples of requests for the account's detectors as one batch
    (``ingest.routed.feed``; ``before_commit`` runs in its transaction); returns how
    many points were fed. Points of new series past their detector's ``max_series`` are
    refused, counted and logged; the others are stored."""

    def routed(rows: list[asyncpg.Record]) -> tuple[list[Point], dict[str, int]]:
        return route(requests, targets_of(rows))

    outcome, points, counts = await feed(
        ingestor, account, SOURCE_TYPE, routed, before_commit=before_commit
    )
    count(counts)
    if outcome is not None and outcome.refused:
        log.warning("remote write, account %s: %s", account, refusal(outcome))
    return len(points)
