"""The answer shapes of anomaly rows."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.anomaly.series import labels_of


def anomaly_out(row: asyncpg.Record) -> dict[str, Any]:
    context = row["context"] or {}
    return {
        "id": row["id"],
        "detector_id": row["detector_id"],
        "labels": labels_of(row["series_key"]),
        "kind": row["kind"],
        "timestamp": row["ts"],
        "value": row["value"],
        "score": row["score"] if row["score"] is not None else 0.0,
        "severity": row["severity"] or "warning",
        "expected": row["expected"],
        "lower": row["lower"],
        "upper": row["upper"],
        "late": row["late"],
        "explanation": context.get("explanation") or "",
        "episode_start": context.get("episode_start"),
        "status": row["status"] or "open",
        "note": row["note"],
        "reviewed_at": row["reviewed_at"],
        "ingested_at": row["ingested_at"],
    }


def anomaly_detail(row: asyncpg.Record, neighbours: list[asyncpg.Record]) -> dict[str, Any]:
    context = row["context"] or {}
    return {
        **anomaly_out(row),
        "algorithm": context.get("algorithm"),
        "params": context.get("params"),
        "thresholds": context.get("thresholds"),
        "context": context,
        "neighbours": [
            {
                "id": n["id"],
                "timestamp": n["ts"],
                "value": n["value"],
                "score": n["score"],
                "is_anomaly": n["is_anomaly"],
                "expected": n["expected"],
                "lower": n["lower"],
                "upper": n["upper"],
                "late": n["late"],
            }
            for n in neighbours
        ],
    }
