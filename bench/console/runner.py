"""`nsentry bench console`: how long the console's pages take on the real stack.

SPEC section 9: "Console pages under 200 ms with 100 detectors and a week of 1-minute
data on the detector shown." The services and the console run as `nsentry serve`
runs them (uvicorn, one process each) on a scratch database; the data goes in
through the REST APIs: 100 detectors, a week of 1-minute points on the one shown
(10,080, with injected spikes), an hour on the others, a schedule, a policy and
alerts. A person signs in through the sign-in form and every page is fetched
`--repeat` times after a warm-up; the median, p95 and worst of each are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from bench.kit import scratch_database, uvicorn_process

TARGET_MS = 200.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detectors", type=int, default=100, help="detectors in the account")
    parser.add_argument("--days", type=float, default=7, help="days of 1-minute data shown")
    parser.add_argument("--repeat", type=int, default=20, help="timed fetches of each page")
    parser.add_argument("--database-url", default=None, help="a server to use (default embedded)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def _seed(anomaly: str, oncall: str, headers: dict[str, str], args: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with httpx.AsyncClient(headers=headers, timeout=120, trust_env=False) as http:

        async def post(url: str, body: Any) -> Any:
            answer = await http.post(url, json=body)
            assert answer.status_code < 300, (url, answer.status_code, answer.text[:300])
            return answer.json()

        for person in ("ada", "bob", "cy"):
            await post(f"{oncall}/api/v1/people", {"id": person, "name": person.title()})
        await post(f"{oncall}/api/v1/schedules", {
            "id": "primary", "name": "Primary", "timezone": "Europe/Berlin",
            "layers": [{"name": "day", "rotation": {
                "type": "daily", "handoff": _stamp(now)[:16].replace("Z", ""),
                "participants": ["ada", "bob", "cy"]}}],
        })  # fmt: skip
        await post(f"{oncall}/api/v1/policies", {
            "id": "backend", "name": "Backend",
            "steps": [{"delay_minutes": 15, "targets": [{"type": "schedule", "id": "primary"}]}],
        })  # fmt: skip
        alerts = [
            await post(f"{oncall}/api/v1/alerts", {"policy_id": "backend", "summary": f"alert {i}"})
            for i in range(20)
        ]
        rng = np.random.default_rng(11)
        shown = "shown"
        for i in range(args.detectors):
            ident = shown if i == 0 else f"det-{i:03d}"
            await post(f"{anomaly}/api/v1/detectors", {"id": ident, "name": f"Detector {i}",
                                                        "algorithm": "mad"})  # fmt: skip
        n = int(args.days * 1440)
        values = rng.normal(100, 3, n)
        values[rng.choice(n, 12, replace=False)] += 60
        batch: list[dict[str, Any]] = []
        for i, v in enumerate(values):
            ts = _stamp(now - timedelta(minutes=n - i))
            batch.append({"detector_id": shown, "value": float(v), "timestamp": ts})
        for i in range(1, args.detectors):
            for m in range(60):
                ts = _stamp(now - timedelta(minutes=60 - m))
                batch.append({"detector_id": f"det-{i:03d}", "value": float(rng.normal(5, 1)),
                              "timestamp": ts})  # fmt: skip
        for start in range(0, len(batch), 10_000):
            await post(f"{anomaly}/api/v1/ingest", {"points": batch[start : start + 10_000]})
    return {"shown": shown, "alert": alerts[0]["id"], "points": n}


async def _sign_in(console: str, secret: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=console, timeout=30, trust_env=False)
    form = await client.get("/signin")
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    answer = await client.post(
        "/signin", data={"csrf_token": token.group(1), "secret": secret, "account": "primary"}
    )
    assert answer.status_code == 303, answer.text[:300]
    return client


async def _measure(console: str, secret: str, seeded: dict[str, Any], repeat: int) -> dict:  # type: ignore[type-arg]
    pages = {
        "overview": "/",
        "detector 24h": f"/detectors/{seeded['shown']}",
        "detector 7d": f"/detectors/{seeded['shown']}?range=7d",
        "alerts": "/alerts",
        "alert": f"/alerts/{seeded['alert']}",
        "schedule (2 weeks)": "/schedules/primary",
        "people and policies": "/people",
    }
    client = await _sign_in(console, secret)
    result: dict[str, Any] = {}
    try:
        for name, path in pages.items():
            for _ in range(2):  # warm-up: connections, caches
                assert (await client.get(path)).status_code == 200, path
            times = []
            size = 0
            for _ in range(repeat):
                started = time.perf_counter()
                answer = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
                size = len(answer.content)
            times.sort()
            result[name] = {
                "path": path,
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
                "max_ms": round(times[-1], 1),
                "bytes": size,
            }
    finally:
        await client.aclose()
    return result


def run(args: argparse.Namespace) -> int:
    secret = secrets.token_urlsafe(32)
    with scratch_database(args.database_url) as dsn:
        env = {
            "DATABASE_URL": dsn,
            "PLUGIN_SECRET": secret,
            "NSELF_LICENSE_SKIP_VERIFY": "1",
            "LOG_LEVEL": "warning",
        }
        with (
            uvicorn_process("services.anomaly.app:create_app", env) as anomaly_port,
            uvicorn_process("services.oncall.app:create_app", env) as oncall_port,
        ):
            anomaly = f"http://127.0.0.1:{anomaly_port}"
            oncall = f"http://127.0.0.1:{oncall_port}"
            headers = {"Authorization": f"Bearer {secret}"}
            started = time.perf_counter()
            seeded = asyncio.run(_seed(anomaly, oncall, headers, args))
            print(
                f"seeded {args.detectors} detectors, {seeded['points']} points on the one shown "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            console_env = {**env, "CONSOLE_ANOMALY_URL": anomaly, "CONSOLE_ONCALL_URL": oncall}
            with uvicorn_process("services.console.app:create_app", console_env) as port:
                result = asyncio.run(
                    _measure(f"http://127.0.0.1:{port}", secret, seeded, args.repeat)
                )
    print(f"{'page':<22}{'median':>10}{'p95':>10}{'max':>10}{'bytes':>10}")
    for name, row in result.items():
        print(
            f"{name:<22}{row['median_ms']:>8.1f}ms{row['p95_ms']:>8.1f}ms"
            f"{row['max_ms']:>8.1f}ms{row['bytes']:>10}"
        )
    worst = max(row["median_ms"] for row in result.values())
    verdict = "within" if worst < TARGET_MS else "OVER"
    print(f"slowest median {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    if args.json:
        print(json.dumps({"pages": result, "target_ms": TARGET_MS, "slowest_median_ms": worst}))
    return 0
