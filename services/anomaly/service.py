"""Domain operations behind the routes: detector configuration, row shapes, parsing."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import pydantic_core
from pydantic import TypeAdapter, ValidationError

from services.anomaly import scoring
from services.anomaly.detectors.base import InvalidParams
from services.anomaly.models import MAX_BATCH, BatchIn, IngestResult, PointIn
from services.anomaly.thresholds import parse_thresholds
from services.common.errors import BadRequest, PayloadTooLarge, ValidationFailed

_POINTS = TypeAdapter(list[PointIn])
_SLUG_CHARS = re.compile(r"[^a-z0-9_.-]+")


# -- configuration ------------------------------------------------------------
def invalid(where: str, message: str, value: Any = None) -> ValidationFailed:
    details = [{"loc": ["body", *where.split(".")], "message": message, "type": "invalid"}]
    return ValidationFailed(f"{where}: {message}", details=details)


def check_config(
    algorithm: str, params: dict[str, Any], thresholds: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Validate algorithm, params and thresholds; return them normalised and the warm-up."""
    try:
        model = scoring.build_model(algorithm, params)
    except InvalidParams as exc:
        where = "algorithm" if exc.field == "algorithm" else f"params.{exc.field}"
        raise invalid(where, exc.message) from None
    try:
        normalised_thresholds = parse_thresholds(thresholds).model_dump()
    except InvalidParams as exc:
        raise invalid(f"thresholds.{exc.field}", exc.message) from None
    return model.get_params(), normalised_thresholds, int(model.warmup)


def generate_id(name: str) -> str:
    stem = _SLUG_CHARS.sub("-", name.lower()).strip("-._")[:48] or "detector"
    if not stem[0].isalnum():
        stem = "d" + stem
    return f"{stem}-{secrets.token_hex(3)}"


# -- row shapes -----------------------------------------------------------------
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


def anomaly_out(row: asyncpg.Record) -> dict[str, Any]:
    context = row["context"] or {}
    return {
        "id": row["id"],
        "detector_id": row["detector_id"],
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


# -- ingest bodies ------------------------------------------------------------
def parse_ingest(body: bytes) -> tuple[list[PointIn], bool]:
    """One point or ``{"points": [...]}``: (points, is_batch). 413 over the batch limit.

    A valid body is validated straight from the JSON bytes; anything else takes the
    step-by-step path below, which words every error (and the 413 comes before
    any point is looked at).
    """
    try:
        if b'"points"' in body:
            points = BatchIn.model_validate_json(body).points
            if len(points) <= MAX_BATCH:
                return points, True
        else:
            return [PointIn.model_validate_json(body)], False
    except ValueError:  # ValidationError included
        pass
    return _parse_ingest_checked(body)


def _parse_ingest_checked(body: bytes) -> tuple[list[PointIn], bool]:
    try:
        document = pydantic_core.from_json(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if isinstance(document, dict) and "points" in document:
        raw = document["points"]
        extra = sorted(set(document) - {"points"})
        if extra:
            raise invalid(extra[0], 'unexpected field (send a point or {"points": [...]})')
        if not isinstance(raw, list):
            raise invalid("points", "must be a list of points")
        if len(raw) > MAX_BATCH:
            raise PayloadTooLarge(
                f"{len(raw)} points in one batch; at most {MAX_BATCH}",
                details={"points": len(raw), "max": MAX_BATCH},
            )
        try:
            return _POINTS.validate_python(raw), True
        except ValidationError as exc:
            raise _point_error(exc, prefix=["points"]) from None
    if not isinstance(document, dict):
        raise invalid(
            "body", 'expected a point {"detector_id","value","timestamp"} or {"points": [...]}'
        )
    try:
        return [PointIn.model_validate(document)], False
    except ValidationError as exc:
        raise _point_error(exc, prefix=[]) from None


def ingest_result_json(outcome: scoring.IngestOutcome) -> bytes:
    """The JSON of an ``IngestResult``."""
    if not outcome.anomalies:
        return b'{"accepted":%d,"duplicates":%d,"late":%d,"anomalies":[]}' % (
            outcome.accepted,
            outcome.duplicates,
            outcome.late,
        )
    return IngestResult.model_validate(outcome.as_dict()).model_dump_json().encode()


def _point_error(exc: ValidationError, *, prefix: list[str]) -> ValidationFailed:
    details = [
        {
            "loc": ["body", *prefix, *(str(p) for p in e.get("loc", ()))],
            "message": str(e.get("msg", "invalid")),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    where = ".".join(details[0]["loc"][1:]) or "body"
    return ValidationFailed(f"{where}: {details[0]['message']}", details=details)


# -- backtests ----------------------------------------------------------------
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
    scored = scoring.score_series(
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
                "episode_start": scoring._from_epoch(start) if start is not None else None,
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
