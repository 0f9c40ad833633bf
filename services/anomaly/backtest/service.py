"""Backtests: a series scored from scratch with proposed settings; nothing stored."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np

from services.anomaly.backtest.models import SeriesPoint
from services.anomaly.ingest.scoring import score_series
from services.common.errors import invalid_field


def in_time_order(points: list[SeriesPoint]) -> tuple[list[datetime], list[float]]:
    """The given series sorted by time (UTC); a repeated timestamp is a 422 naming it."""
    order = sorted(range(len(points)), key=lambda i: points[i].timestamp)
    for a, b in zip(order, order[1:], strict=False):
        if points[a].timestamp == points[b].timestamp:
            raise invalid_field(f"points.{b}.timestamp", "repeats an earlier timestamp")
    return [points[i].timestamp.astimezone(UTC) for i in order], [points[i].value for i in order]


def backtest(
    *,
    algorithm: str,
    params: dict[str, Any],
    thresholds: dict[str, Any],
    timestamps: list[datetime],
    values: list[float],
    include_points: bool,
) -> dict[str, Any]:
    """Score a series from scratch with the given configuration; stores nothing."""
    n = len(values)
    epoch = np.fromiter((t.timestamp() for t in timestamps), dtype=np.float64, count=n)
    vs = np.asarray(values, dtype=np.float64)
    scored = score_series(
        algorithm=algorithm,
        params=params,
        thresholds=thresholds,
        state=None,
        epoch=epoch,
        values=vs,
        late=np.zeros(n, dtype=bool),
    )
    anomalies = []
    for i in np.flatnonzero(scored.is_anomaly).tolist():
        start = scored.episode_start[i]
        anomalies.append(
            {
                "timestamp": timestamps[i],
                "value": values[i],
                "score": float(scored.score[i]),
                "severity": scored.severity[i],
                "expected": _finite(scored.expected[i]),
                "lower": _finite(scored.lower[i]),
                "upper": _finite(scored.upper[i]),
                "explanation": scored.explanation[i] or "",
                "episode_start": datetime.fromtimestamp(start, UTC) if start is not None else None,
            }
        )
    points = None
    if include_points:
        points = [
            {
                "timestamp": timestamps[i],
                "value": values[i],
                "score": s,
                "expected": _finite(e),
                "lower": _finite(lo),
                "upper": _finite(hi),
                "is_anomaly": a,
                "severity": scored.severity[i],
            }
            for i, (s, e, lo, hi, a) in enumerate(
                zip(
                    scored.score.tolist(),
                    scored.expected.tolist(),
                    scored.lower.tolist(),
                    scored.upper.tolist(),
                    scored.is_anomaly.tolist(),
                    strict=True,
                )
            )
        ]
    return {
        "algorithm": algorithm,
        "params": params,
        "thresholds": thresholds,
        "count": n,
        "anomaly_count": len(anomalies),
        "episodes": int(scored.opens_episode.sum()),
        "points": points,
        "anomalies": anomalies,
    }


def _finite(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
