"""What the Prometheus pull tests share: a real Prometheus (Debian's 2.42) scraping the
remote-write tests' exporter (three ``instance`` series), service replicas each with
its own poller driven by ``run_once(now)``, and the two views compared: the points the
service stored and Prometheus' own query_range answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from services.anomaly.app import create_app
from services.anomaly.prometheus_pull.client import PrometheusClient
from services.anomaly.prometheus_pull.poller import PassReport, Poll, Poller
from services.anomaly.prometheus_pull.saving import source_policy
from services.common.background import worker_pool
from services.common.settings import Settings
from tests.anomaly.conftest import until
from tests.anomaly.oncall_standin import free_port
from tests.anomaly.remote_write.prometheus import PrometheusServer, scrape_config
from tests.anomaly.remote_write.test_prometheus import INSTANCES
from tests.conftest import auth_headers, make_settings, serve_app

JOB = "pull"
QUERY = f'rwtest_latency_ms{{job="{JOB}"}}'
Series = dict[str, list[tuple[float, float]]]  # instance -> [(epoch seconds, value)]


def now() -> datetime:
    """The instant a pass is run at: Prometheus' samples carry the wall clock."""
    return datetime.now(UTC)


def pull_settings(database_url: str, **overrides: Any) -> Settings:
    """The service's settings with the loopback Prometheus allowed as a source."""
    return make_settings(database_url, anomaly_allowed_sources="127.0.0.1", **overrides)


async def start_prometheus(binary: str, directory: Path, exporter: str) -> PrometheusServer:
    """Prometheus scraping the exporter every second, once it answers the three series."""
    server = PrometheusServer(
        binary, directory, scrape_config(exporter=exporter, job=JOB), free_port()
    )
    server.start()
    await wait_ready(server)
    return server


async def wait_ready(server: PrometheusServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:

        async def three() -> bool:
            if server.process is None or server.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {server.log_tail()}")
            try:
                answer = await client.get(f"{server.url}/api/v1/query", params={"query": QUERY})
            except httpx.HTTPError:
                return False
            return answer.status_code == 200 and len(answer.json()["data"]["result"]) == 3

        await until(three, seconds=60, what="prometheus to scrape the three series")


def source(server: PrometheusServer, **fields: Any) -> dict[str, Any]:
    return {"type": "prometheus", "url": server.url, "query": QUERY, **fields}


@dataclass
class Replica:
    """One service replica: its app (ingestor), its own worker pool and poller; the
    polls it made."""

    app: FastAPI
    client: httpx.AsyncClient
    poller: Poller
    polls: list[Poll] = field(default_factory=list)

    async def run_once(self, at: datetime | None = None) -> PassReport:
        report = await self.poller.run_once(at or now())
        self.polls.extend(report.polls)
        return report


@asynccontextmanager
async def replica(
    settings: Settings, *, lease: timedelta = timedelta(seconds=60), batch: int = 20
) -> AsyncIterator[Replica]:
    app = create_app(settings, background=False)
    async with serve_app(app) as client, worker_pool(settings, max_size=2) as pool:
        poller = Poller(
            pool,
            app.state.ingestor,
            PrometheusClient(source_policy(settings), timeout=5),
            batch=batch,
            lease=lease,
        )
        yield Replica(app, client, poller)


async def detector(client: httpx.AsyncClient, detector_id: str, account: str) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/detectors/{detector_id}", headers=auth_headers(account))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def stored(database_url: str, account: str, detector_id: str) -> Series:
    """The detector's stored points per instance, in time order."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT s.labels::text AS labels, extract(epoch FROM p.ts)::float8 AS t, p.value "
            "FROM np_anomaly_data_points p JOIN np_anomaly_series s "
            "ON s.source_account_id = p.source_account_id AND s.detector_id = p.detector_id "
            "AND s.series_key = p.series_key "
            "WHERE p.source_account_id = $1 AND p.detector_id = $2 ORDER BY p.ts",
            account,
            detector_id,
        )
    finally:
        await conn.close()
    series: Series = {}
    for r in rows:
        series.setdefault(json.loads(r["labels"]).get("instance", "?"), []).append(
            (r["t"], r["value"])
        )
    return series


async def prometheus_answer(
    server: PrometheusServer, start: float, end: float, step: int
) -> Series:
    """Prometheus' own query_range answer (the same query, grid and step)."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(
            f"{server.url}/api/v1/query_range",
            params={"query": QUERY, "start": start, "end": end, "step": step},
        )
    assert answer.status_code == 200, answer.text
    return {
        s["metric"]["instance"]: [(float(t), float(v)) for t, v in s["values"]]
        for s in answer.json()["data"]["result"]
    }


async def compare_with_prometheus(
    server: PrometheusServer, database_url: str, account: str, detector_id: str, step: int
) -> int:
    """Every stored point is Prometheus' answer over the stored range, once; returns
    how many points that is."""
    mine = await stored(database_url, account, detector_id)
    assert sorted(mine) == list(INSTANCES), sorted(mine)
    start = min(points[0][0] for points in mine.values())
    end = max(points[-1][0] for points in mine.values())
    theirs = await prometheus_answer(server, start, end, step)
    for instance in INSTANCES:
        times = [t for t, _ in mine[instance]]
        assert len(times) == len(set(times)), f"{instance}: a point stored twice"
        assert mine[instance] == theirs[instance], (
            instance,
            sorted(set(theirs[instance]) - set(mine[instance]))[:5],  # skipped
            sorted(set(mine[instance]) - set(theirs[instance]))[:5],  # not Prometheus'
        )
    return sum(len(p) for p in mine.values())


async def poll_until(
    replicas: list[Replica],
    check: Callable[[], Awaitable[Any]],
    *,
    seconds: float,
    what: str,
) -> Any:
    """Passes of every replica at once (same instant), until ``check`` holds."""

    async def step() -> Any:
        at = now()
        await asyncio.gather(*(r.run_once(at) for r in replicas))
        return await check()

    return await until(step, seconds=seconds, what=what)
