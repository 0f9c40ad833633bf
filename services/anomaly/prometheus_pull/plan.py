"""PURE: what a poll asks Prometheus for, when the next one is due, and how its
``/api/v1/query_range`` answer becomes points.

Time is in whole epoch seconds on the grid of the source's step (multiples of
``step_seconds`` since the epoch, as Grafana aligns its queries), so that the
instants a detector stores are the instants Prometheus evaluates and any two polls
ask for disjoint sets of them:

* ``position`` is the last instant whose points are stored (None before the first
  poll). The next window starts one step after it and ends one step before ``now``
  (the newest instant whose scrapes have surely arrived), aligned down.
* The first poll backfills: it starts ``lookback_seconds`` before ``now`` (at least
  the newest instant), and every point up to the end of that window
  (``backfill_until``) is learned but pages nobody.
* A window never starts more than ``lookback_seconds`` back: after an outage longer
  than that, the oldest part is not fetched (Prometheus' retention is the other
  limit).
* Prometheus refuses a query_range of more than 11,000 points per series: a longer
  window is cut to ``MAX_POINTS`` instants, and the next poll is due at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_POINTS = 11_000  # Prometheus' limit of points per series in one query_range
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch(at: datetime) -> float:
    return at.timestamp()


def instant(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def align_down(t: float, step: int) -> int:
    return math.floor(t / step) * step


def align_up(t: float, step: int) -> int:
    return math.ceil(t / step) * step


@dataclass(frozen=True)
class Window:
    """One query_range: the instants ``start, start + step, ..., last`` (``last`` the
    window's last instant, at most ``end``); ``quiet_until``: points at or before it
    page nobody (a backfill); ``behind``: more is due at once after this one."""

    start: int
    last: int
    step: int
    quiet_until: int | None
    behind: bool

    @property
    def instants(self) -> int:
        return (self.last - self.start) // self.step + 1


def next_window(
    position: float | None,
    backfill_until: float | None,
    now: float,
    step: int,
    lookback: int,
    *,
    max_points: int = MAX_POINTS,
) -> Window | None:
    """The next window to poll at ``now`` (epoch seconds), or None when nothing is due."""
    if step < 1 or max_points < 1:
        raise ValueError("step and max_points must be at least 1")
    end = align_down(now - step, step)
    earliest = min(align_up(now - lookback, step), end)
    if position is None:
        start = earliest
        backfill_until = end
    else:
        start = max(int(position) + step, earliest)
    if end < start:
        return None
    last = min(end, start + (max_points - 1) * step)
    last = start + ((last - start) // step) * step
    quiet = None if backfill_until is None or backfill_until < start else int(backfill_until)
    return Window(start, last, step, quiet, behind=last + step <= end)


def next_due(position: float | None, now: float, step: int, *, behind: bool = False) -> float:
    """When the poll after one that stored up to ``position`` is due: at once when it
    is behind, else when the instant one step after ``position`` is one step old."""
    if behind or position is None:
        return now
    return float(position) + 2 * step


class AnswerError(Exception):
    """The answer is no query_range result (the message says why; no secret in it)."""


@dataclass(frozen=True)
class PulledPoint:
    """A point as the ingestor takes it (``ingest.outcome.PointLike``)."""

    detector_id: str
    timestamp: datetime
    value: float
    labels: dict[str, str] | None


@dataclass
class Pulled:
    """A query_range answer turned into points; what was skipped, by reason."""

    points: list[PulledPoint] = field(default_factory=list)
    series: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def _float(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def error_message(body: Any) -> str | None:
    """The error of a ``{"status": "error", "errorType", "error"}`` answer, or None."""
    if isinstance(body, dict) and body.get("status") == "error":
        kind = str(body.get("errorType") or "error")[:50]
        return f"{kind}: {str(body.get('error') or '')[:400]}"
    return None


def points_of(detector_id: str, body: Any, window: Window, *, keep_name: bool) -> Pulled:
    """The points of a query_range answer for the window's instants.

    Each series' labels as Prometheus answers them, but ``__name__`` (dropped unless
    ``keep_name``, i.e. ``group_by`` names it: a query's series are its labels, as with
    remote write). Skipped and counted: NaN and infinities (``not_finite``: Prometheus
    answers ``"NaN"``, ``"+Inf"``; its staleness markers never reach a query_range
    answer, they end the series instead), values that are no number (``malformed``),
    and instants outside the window (``outside``)."""
    message = error_message(body)
    if message is not None:
        raise AnswerError(message)
    if not isinstance(body, dict) or body.get("status") != "success":
        raise AnswerError("not a Prometheus API answer (no status: success)")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, dict) else None
        raise AnswerError(f"the query's result is {kind!r}, not a range vector (matrix)")
    result = data.get("result")
    if not isinstance(result, list):
        raise AnswerError("the answer's data.result is not a list")
    pulled = Pulled()
    for series in result:
        if not isinstance(series, dict) or not isinstance(series.get("metric"), dict):
            raise AnswerError("a series of the answer has no metric labels")
        values = series.get("values")
        if not isinstance(values, list):
            raise AnswerError("a series of the answer has no values")
        metric = series["metric"]
        labels = {str(k): str(v) for k, v in metric.items() if keep_name or k != "__name__"}
        pulled.series += 1
        for pair in values:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                pulled.skip("malformed")
                continue
            at, text = pair
            value = _float(text)
            if value is None or isinstance(at, bool) or not isinstance(at, int | float):
                pulled.skip("malformed")
                continue
            if not math.isfinite(value):
                pulled.skip("not_finite")
                continue
            if not window.start <= at <= window.last:
                pulled.skip("outside")
                continue
            pulled.points.append(PulledPoint(detector_id, instant(at), value, dict(labels)))
    return pulled
