"""Data the console tests look at, created through the services' REST APIs: a
detector with a day of 1-minute points and an injected spike (real ingest), a
static detector whose anomaly pages through nself-oncall (a real trigger), people,
a schedule in Europe/Berlin whose two weeks cross a DST change, a policy."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from services.console.formatting import rfc3339
from tests.console.stack import Stack

SPIKE_MINUTES_AGO = 180
DST_START = "2027-03-21"  # Europe/Berlin springs forward on Sunday 2027-03-28


@dataclass
class Seeded:
    detector: str
    anomaly: dict[str, Any]
    alert_id: str
    schedule: str


def minute_series(detector: str, end: datetime, n: int, spike_at: int) -> list[dict[str, Any]]:
    values = np.random.default_rng(7).normal(180.0, 4.0, n)
    values[spike_at] = 950.0
    return [
        {
            "detector_id": detector,
            "value": round(float(v), 3),
            "timestamp": rfc3339(end - timedelta(minutes=n - i)),
        }
        for i, v in enumerate(values)
    ]


async def eventually(check: Any, what: str, attempts: int = 400) -> Any:
    """Wait for a condition another task makes true (the paging sender's POST)."""
    for _ in range(attempts):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


async def seed(site: Stack) -> Seeded:
    now = site.clock()
    call = site.call
    for person, zone in (("ada", "Europe/Berlin"), ("bob", "America/New_York"), ("cy", "UTC")):
        await call("oncall", "POST", "/api/v1/people", json={
            "id": person, "name": person.capitalize(), "email": f"{person}@example.com",
            "timezone": zone, "contact_methods": [],
        })  # fmt: skip
    await call("oncall", "POST", "/api/v1/schedules", json={
        "id": "primary", "name": "Primary", "timezone": "Europe/Berlin",
        "layers": [{
            "name": "day",
            "rotation": {"type": "daily", "length": 1, "handoff": "2026-11-23T08:00",
                         "participants": ["ada", "bob"]},
            "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                              "start": "08:00", "end": "20:00"}],
        }],
    })  # fmt: skip
    await call("oncall", "POST", "/api/v1/policies", json={
        "id": "backend", "name": "Backend",
        "steps": [{"delay_minutes": 15, "targets": [{"type": "schedule", "id": "primary"}]}],
        "repeat": 0,
    })  # fmt: skip
    await call("anomaly", "POST", "/api/v1/detectors", json={
        "id": "api-latency", "name": "API p95 latency", "algorithm": "mad",
        "thresholds": {"score": 0.99, "direction": "up"},
    })  # fmt: skip
    points = minute_series("api-latency", now, 1440, 1440 - SPIKE_MINUTES_AGO)
    answer = await call("anomaly", "POST", "/api/v1/ingest", json={"points": points})
    spike = [a for a in answer["anomalies"] if a["value"] == 950.0]
    assert spike, answer["anomalies"]
    await call("anomaly", "POST", "/api/v1/detectors", json={
        "id": "checkout-errors", "name": "Checkout errors", "algorithm": "static",
        "params": {"upper": 50}, "escalation_policy_id": "backend",
    })  # fmt: skip
    errors = [
        {
            "detector_id": "checkout-errors",
            "value": v,
            "timestamp": rfc3339(now - timedelta(minutes=m)),
        }
        for v, m in ((3, 3), (75, 2))
    ]
    await call("anomaly", "POST", "/api/v1/ingest", json={"points": errors})

    async def paged() -> str | None:
        alerts = await call("oncall", "GET", "/api/v1/alerts")
        return alerts["data"][0]["id"] if alerts["data"] else None

    alert_id = await eventually(paged, "the anomaly's page reaches nself-oncall")
    return Seeded("api-latency", spike[0], alert_id, "primary")
