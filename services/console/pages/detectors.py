"""Detector: the series with its band and anomaly marks, the anomalies with review
buttons, the settings, and a backtest of proposed settings drawn over the chart."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.anomaly.points.decimate import keep_indices
from services.console import charts
from services.console.client import Api, ApiFailure
from services.console.formatting import parse_instant, rfc3339
from services.console.web import ApiDep, FormDep, now_of, redirect, render

router = APIRouter()

RANGES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
ALGORITHMS = [
    "auto", "static", "ewma", "mad", "iqr", "cusum", "level_shift", "drift", "seasonal",
    "holt_winters", "flatline", "volatility", "gap",
]  # fmt: skip
DIRECTIONS = ["both", "up", "down"]
FEEDBACK = {"confirmed", "false_positive", "resolved", "open"}
CHART_POINTS = 1000  # about one point per pixel of the drawn chart's width


def window(request: Request, range_name: str | None, end: str | None) -> tuple[datetime, datetime]:
    span = RANGES.get(range_name or "24h", RANGES["24h"])
    until = parse_instant(end) or now_of(request)
    return until - span, until


def labels_param(labels: dict[str, str]) -> str:
    """A series' labels as the points route's `labels` parameter."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


async def _view(api: Api, detector_id: str, since: datetime, until: datetime, labels: str | None):  # type: ignore[no-untyped-def]
    window = {"since": rfc3339(since), "until": rfc3339(until)}

    def reviews(only: dict[str, Any]) -> list[Any]:
        return [
            api.anomaly(
                "GET",
                "/api/v1/anomalies",
                params={**window, **only, "detector_id": detector_id, "limit": 100},
            ),
            api.anomaly("GET", "/api/v1/stats", params={**only, "detector_id": detector_id}),
        ]

    detector, points, series, policies, anomalies, stats = await asyncio.gather(
        api.anomaly("GET", f"/api/v1/detectors/{detector_id}"),
        api.anomaly(
            "GET",
            f"/api/v1/detectors/{detector_id}/points",
            params={**window, "labels": labels, "max_points": CHART_POINTS},
        ),
        api.anomaly("GET", f"/api/v1/detectors/{detector_id}/series", params={"limit": 100}),
        api.oncall("GET", "/api/v1/policies", params={"limit": 1000}),
        *reviews({}),
    )
    if len(series["data"]) > 1:  # the anomalies and stats of the series drawn, not all
        drawn = next((s for s in series["data"] if s["labels"] == points["labels"]), None)
        if drawn is not None:
            anomalies, stats = await asyncio.gather(*reviews({"series": drawn["id"]}))
    return detector, points, anomalies, stats, policies, series["data"]


def _decimated(points: list[dict[str, Any]], budget: int = CHART_POINTS) -> list[dict[str, Any]]:
    if len(points) <= budget:
        return points
    values = np.array([float(p["value"]) for p in points])
    anomalous = np.array([bool(p.get("is_anomaly")) for p in points])
    return [points[i] for i in keep_indices(values, anomalous, budget).tolist()]


async def _page(
    request: Request,
    api: Api,
    detector_id: str,
    *,
    range_name: str | None,
    end: str | None,
    labels: str | None,
    backtest: dict[str, Any] | None = None,
    proposed: dict[str, Any] | None = None,
) -> Response:
    since, until = window(request, range_name, end)
    detector, points, anomalies, stats, policies, series = await _view(
        api, detector_id, since, until, labels
    )
    overlay = _decimated(backtest.get("points") or []) if backtest else None
    counts = stats["detectors"][0] if stats["detectors"] else stats["account"]
    svg = charts.detector_svg(
        points["points"],
        since=since,
        until=until,
        title=f"{detector['name']}: values, expected band and anomalies",
        overlay=overlay,
    )
    return render(
        request,
        "detector.html",
        title=detector["name"],
        nav="overview",
        detector=detector,
        points=points,
        anomalies=anomalies["data"],
        counts=counts,
        policies=policies["data"],
        svg=svg,
        ranges=list(RANGES),
        range_name=range_name if range_name in RANGES else "24h",
        end=end or "",
        labels=labels or "",
        series=[{**s, "param": labels_param(s["labels"])} for s in series],
        drawn=labels_param(points["labels"]),
        since=since,
        until=until,
        algorithms=ALGORITHMS,
        directions=DIRECTIONS,
        backtest=backtest,
        proposed=proposed,
    )


@router.get("/detectors/{detector_id}")
async def detector_page(
    request: Request,
    api: ApiDep,
    detector_id: str,
    range: str | None = None,  # noqa: A002 - the query parameter's name
    end: str | None = None,
    labels: str | None = None,
) -> Response:
    return await _page(request, api, detector_id, range_name=range, end=end, labels=labels)


def _back(request: Request, detector_id: str, form: dict[str, str], **extra: Any) -> Response:
    return redirect(
        request,
        f"/detectors/{detector_id}",
        range=form.get("range"),
        end=form.get("end"),
        labels=form.get("labels"),
        **extra,
    )


@router.post("/detectors/{detector_id}/anomalies/{anomaly_id}")
async def review(
    request: Request, api: ApiDep, form: FormDep, detector_id: str, anomaly_id: int
) -> Response:
    status = form.get("status", "")
    if status not in FEEDBACK:
        return _back(request, detector_id, form, error="unknown review status")
    body: dict[str, Any] = {"status": status}
    if form.get("note"):
        body["note"] = form["note"][:2000]
    await api.anomaly("PATCH", f"/api/v1/anomalies/{anomaly_id}", json=body)
    return _back(request, detector_id, form, notice=f"anomaly {anomaly_id}: {status}")


def _proposed(form: dict[str, str], detector: dict[str, Any]) -> dict[str, Any]:
    thresholds = dict(detector.get("thresholds") or {})
    if form.get("score"):
        thresholds["score"] = float(form["score"])
        critical = thresholds.get("critical")
        if isinstance(critical, int | float) and critical < thresholds["score"]:
            thresholds["critical"] = thresholds["score"]  # critical is never below score
    if form.get("direction") in DIRECTIONS:
        thresholds["direction"] = form["direction"]
    algorithm = form.get("algorithm") if form.get("algorithm") in ALGORITHMS else None
    return {"algorithm": algorithm or detector["algorithm"], "thresholds": thresholds}


@router.post("/detectors/{detector_id}/backtest")
async def backtest(request: Request, api: ApiDep, form: FormDep, detector_id: str) -> Response:
    detector = await api.anomaly("GET", f"/api/v1/detectors/{detector_id}")
    try:
        proposed = _proposed(form, detector)
    except ValueError:
        return _back(request, detector_id, form, error="the score must be a number")
    since, until = window(request, form.get("range"), form.get("end"))
    body = {
        **proposed,
        "params": {} if proposed["algorithm"] != detector["algorithm"] else detector["params"],
        "since": rfc3339(since),
        "until": rfc3339(until),
        "include_points": True,
    }
    try:
        result = await api.anomaly("POST", f"/api/v1/detectors/{detector_id}/backtest", json=body)
    except ApiFailure as exc:
        if exc.status != 422:
            raise
        return _back(request, detector_id, form, error=f"backtest refused: {exc.message}")
    return await _page(
        request,
        api,
        detector_id,
        range_name=form.get("range"),
        end=form.get("end"),
        labels=form.get("labels"),
        backtest=result,
        proposed=proposed,
    )


@router.post("/detectors/{detector_id}/settings")
async def save_settings(request: Request, api: ApiDep, form: FormDep, detector_id: str) -> Response:
    detector = await api.anomaly("GET", f"/api/v1/detectors/{detector_id}")
    try:
        proposed = _proposed(form, detector)
    except ValueError:
        return _back(request, detector_id, form, error="the score must be a number")
    patch: dict[str, Any] = {"thresholds": proposed["thresholds"]}
    if proposed["algorithm"] != detector["algorithm"]:
        patch["algorithm"] = proposed["algorithm"]
        patch["params"] = {}
    if form.get("name", "").strip():
        patch["name"] = form["name"].strip()[:200]
    if "policy" in form:
        patch["escalation_policy_id"] = form["policy"] or None
    if "enabled_given" in form:
        patch["enabled"] = form.get("enabled") == "on"
    try:
        await api.anomaly("PATCH", f"/api/v1/detectors/{detector_id}", json=patch)
    except ApiFailure as exc:
        if exc.status != 422:
            raise
        return _back(request, detector_id, form, error=f"settings refused: {exc.message}")
    return _back(request, detector_id, form, notice="settings saved")
