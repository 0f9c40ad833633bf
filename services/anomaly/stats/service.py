"""Counts per account and per detector, and the false-positive rate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg


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
