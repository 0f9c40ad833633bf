"""Detector configuration: validation, ids and the answer shape of a detector row."""

from __future__ import annotations

import re
import secrets
from typing import Any

import asyncpg

from services.anomaly.detectors.base import InvalidParams
from services.anomaly.ingest.scoring import build_detector
from services.anomaly.thresholds import parse_thresholds
from services.common.errors import invalid_field

_SLUG_CHARS = re.compile(r"[^a-z0-9_.-]+")


def check_config(
    algorithm: str, params: dict[str, Any], thresholds: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Validate algorithm, params and thresholds; return them normalised and the warm-up."""
    try:
        detector = build_detector(algorithm, params)
    except InvalidParams as exc:
        where = "algorithm" if exc.field == "algorithm" else f"params.{exc.field}"
        raise invalid_field(where, exc.message) from None
    try:
        normalised_thresholds = parse_thresholds(thresholds).model_dump()
    except InvalidParams as exc:
        raise invalid_field(f"thresholds.{exc.field}", exc.message) from None
    return detector.get_params(), normalised_thresholds, int(detector.warmup)


def generate_id(name: str) -> str:
    stem = _SLUG_CHARS.sub("-", name.lower()).strip("-._")[:48] or "detector"
    if not stem[0].isalnum():
        stem = "d" + stem
    return f"{stem}-{secrets.token_hex(3)}"


def detector_status(row: asyncpg.Record) -> str:
    if not row["enabled"]:
        return "disabled"
    return "learning" if row["n_seen"] < row["warmup"] else "active"


def detector_out(row: asyncpg.Record) -> dict[str, Any]:
    last = None
    if row["last_ts"] is not None:
        last = {"timestamp": row["last_ts"], "value": row["last_value"], "score": row["last_score"]}
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "metric_source": row["metric_source"],
        "algorithm": row["algorithm"],
        "params": row["params"],
        "thresholds": row["thresholds"],
        "escalation_policy_id": row["escalation_policy_id"],
        "enabled": row["enabled"],
        "status": detector_status(row),
        "n_seen": row["n_seen"],
        "warmup": row["warmup"],
        "counts": {
            "points": row["points_count"],
            "anomalies": row["anomalies_count"],
            "late": row["late_count"],
            "duplicates": row["duplicates_count"],
        },
        "last_point": last,
        "last_anomaly_at": row["last_anomaly_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
