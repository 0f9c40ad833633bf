"""Detector configuration: validation, ids, updates and the answer shape of a detector row."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
from pydantic import ValidationError

from services.anomaly.detectors.base import InvalidParams, params_error
from services.anomaly.detectors_api import store
from services.anomaly.ingest.scoring import build_detector
from services.anomaly.paging.keys import open_episode
from services.anomaly.prometheus_pull.source import source_status
from services.anomaly.series import labels_of
from services.anomaly.thresholds import Thresholds, parse_thresholds
from services.common.errors import ValidationFailed, invalid_field

_SLUG_CHARS = re.compile(r"[^a-z0-9_.-]+")


class Fresh(NamedTuple):
    """What a fresh detector of a configuration says: its warm-up and whether it starts
    out learning (status `learning`)."""

    warmup: int
    learning: bool


def check_config(
    algorithm: str, params: dict[str, Any], thresholds: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], Fresh]:
    """Validate algorithm, params and thresholds; return them normalised and what a
    fresh detector of them says (warm-up, learning)."""
    try:
        detector = build_detector(algorithm, params)
        # the types as the OpenAPI documents give them: "5" or true is no number
        type(detector).Params.model_validate(params or {}, strict=True)
    except InvalidParams as exc:
        where = "algorithm" if exc.field == "algorithm" else f"params.{exc.field}"
        raise invalid_field(where, exc.message) from None
    except ValidationError as exc:
        error = params_error(exc)
        raise invalid_field(f"params.{error.field}", error.message) from None
    try:
        normalised_thresholds = parse_thresholds(thresholds).model_dump()
        # the types as the OpenAPI documents give them: "0.9" or true is no number
        Thresholds.model_validate(thresholds, strict=True)
    except InvalidParams as exc:
        raise invalid_field(f"thresholds.{exc.field}", exc.message) from None
    except ValidationError as exc:
        error = params_error(exc)
        raise invalid_field(f"thresholds.{error.field}", error.message) from None
    fresh = Fresh(int(detector.warmup), bool(detector.is_learning))
    return detector.get_params(), normalised_thresholds, fresh


def generate_id(name: str) -> str:
    stem = _SLUG_CHARS.sub("-", name.lower()).strip("-._")[:48] or "detector"
    if not stem[0].isalnum():
        stem = "d" + stem
    return f"{stem}-{secrets.token_hex(3)}"


# fields a PATCH may leave out but not set to null
_NOT_NULL = (
    "name",
    "description",
    "algorithm",
    "params",
    "thresholds",
    "enabled",
    "metric_source",
    "max_series",
)


async def update(
    conn: asyncpg.Connection, *, account: str, detector_id: str, changes: dict[str, Any]
) -> asyncpg.Record:
    """Apply a PATCH under the row lock. A new algorithm or new params (after
    normalisation) restart learning with the new warm-up (status back to what a fresh
    detector says); thresholds alone keep it."""
    for key in _NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key}: may not be null", details={"field": key})
    row = await store.get_detector(conn, account=account, detector_id=detector_id, for_update=True)
    restart = ("algorithm" in changes and changes["algorithm"] != row["algorithm"]) or (
        "params" in changes
    )
    fresh = None
    if {"algorithm", "params", "thresholds"} & changes.keys():
        params, thresholds, fresh = check_config(
            changes.get("algorithm", row["algorithm"]),
            changes.get("params", row["params"]),
            changes.get("thresholds", row["thresholds"]),
        )
        if "params" in changes or "algorithm" in changes:
            restart = restart or params != row["params"]
            changes["params"] = params
        if "thresholds" in changes:
            changes["thresholds"] = thresholds
    if not restart:
        fresh = None
        changes.pop("params", None)
        changes.pop("algorithm", None)
    dropped: list[str] = []
    episodes: list[tuple[str, str | None, datetime | None]] = []
    if "group_by" in changes or "thresholds" in changes:
        states = await store.series_states(conn, account=account, detector_id=detector_id)
        if "group_by" in changes and changes["group_by"] != row["group_by"]:
            dropped = outside_group_by([r["series_key"] for r in states], changes["group_by"])
        if "thresholds" in changes:  # a new cooldown or auto_resolve applies to open episodes
            policy = parse_thresholds(changes["thresholds"])
            for r in states:
                if r["series_key"] not in dropped:
                    key, ends = open_episode(
                        account, detector_id, r["series_key"], policy, r["policy_state"]
                    )
                    episodes.append((r["series_key"], key, ends))
    return await store.update_detector(
        conn,
        account=account,
        detector_id=detector_id,
        changes=changes,
        restart_learning=restart,
        warmup=fresh.warmup if fresh is not None else None,
        learning=fresh.learning if fresh is not None else None,
        episodes=episodes,
        dropped=dropped,
    )


def outside_group_by(keys: list[str], group_by: list[str] | None) -> list[str]:
    """The series a new ``group_by`` cannot make any more (a label it no longer keeps):
    they are deleted with their models; the others (the empty one always) stay."""
    if group_by is None:
        return []
    kept = set(group_by)
    return [key for key in keys if not set(labels_of(key)) <= kept]


def detector_status(row: asyncpg.Record) -> str:
    """`disabled` when off, else `learning` while the detector says it is still learning
    (its own verdict, stored with its state at every ingest), else `active`."""
    if not row["enabled"]:
        return "disabled"
    return "learning" if row["learning"] else "active"


def progress_out(row: asyncpg.Record) -> dict[str, Any]:
    """What a detector or a series has learned and seen (the same columns on both)."""
    last = None
    if row["last_ts"] is not None:
        last = {"timestamp": row["last_ts"], "value": row["last_value"], "score": row["last_score"]}
    return {
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


def detector_out(row: asyncpg.Record, *, now: datetime | None = None) -> dict[str, Any]:
    """A detector's answer; ``now`` (the app's clock) for its source's lag."""
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
        "group_by": row["group_by"],
        "max_series": row["max_series"],
        "series_count": row["series_count"],
        "no_data_seconds": row["no_data_seconds"],
        "status": detector_status(row),
        "source_status": source_status(row, now or datetime.now(UTC)),
        **progress_out(row),
    }
