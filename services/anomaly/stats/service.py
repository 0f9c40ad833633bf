"""Counts per account and per detector, and the false-positive rate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.anomaly.series import labels_of


def rate(false_positives: int, confirmed: int) -> float | None:
    total = false_positives + confirmed
    return false_positives / total if total else None


def counts_of(rows: Sequence[asyncpg.Record]) -> dict[str, Any]:
    keys = ("points", "anomalies", "reviewed", "confirmed", "false_positives", "resolved")
    total = {k: sum(int(r[k]) for r in rows) for k in keys}
    return {
        **total,
        "by_severity": {
            "warning": sum(int(r["warning"]) for r in rows),
            "critical": sum(int(r["critical"]) for r in rows),
        },
        "false_positive_rate": rate(total["false_positives"], total["confirmed"]),
    }


def per_detector(rows: Sequence[asyncpg.Record], *, by_series: bool) -> list[dict[str, Any]]:
    """The detectors' counts (rows come per series, by detector); with ``by_series``,
    each detector's series too, with their labels."""
    grouped: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        grouped.setdefault(r["detector_id"], []).append(r)
    out = []
    for detector_id, mine in grouped.items():
        entry: dict[str, Any] = {"detector_id": detector_id, **counts_of(mine)}
        if by_series:
            entry["series"] = [
                {"labels": labels_of(r["series_key"]), **counts_of([r])}
                for r in mine
                if r["series_key"] is not None
            ]
        out.append(entry)
    return out
