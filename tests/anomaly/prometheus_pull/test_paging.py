"""The running service (its lifetime hooks: the poller and the paging sender) fed by a
real Prometheus (Debian's 2.42) scraping three instances: one anomaly injected into one
instance's metric opens one alert naming that instance; the other two stay quiet; the
backfill on create pages nobody."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.common.settings import Settings
from tests.anomaly.conftest import (
    assert_one_page_naming,
    create_detector,
    series_by_instance,
    until,
)
from tests.anomaly.oncall_standin import OncallStandIn
from tests.anomaly.prometheus_pull.support import pull_settings, source
from tests.anomaly.remote_write.prometheus import PrometheusServer
from tests.anomaly.remote_write.test_prometheus import INSTANCES, Exporter, spike_until_paged
from tests.conftest import auth_headers

pytestmark = pytest.mark.db
ACCOUNT = "pull-paging"


@pytest.fixture
def service_settings(database_url: str, standin: OncallStandIn) -> Settings:
    """The service's, with the loopback Prometheus allowed as a source."""
    return pull_settings(database_url, oncall_url=standin.url)


async def test_one_spiked_instance_opens_one_alert_naming_it(
    service: str,
    standin: OncallStandIn,
    exporter: tuple[Exporter, str],
    prometheus: PrometheusServer,
) -> None:
    collector, _ = exporter

    async def instant_query(query: str) -> float | None:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"{prometheus.url}/api/v1/query", params={"query": query})
        result = r.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    async def history() -> bool:
        n = await instant_query('count_over_time(rwtest_latency_ms{instance="a"}[60s])')
        return n is not None and n >= 10

    await until(history, seconds=60, what="10 s of history in Prometheus")
    # a spike already in Prometheus' history when the detector is created: backfilled,
    # learned, never paged
    collector.spiked = "a"

    async def spike_scraped() -> bool:
        top = await instant_query('max_over_time(rwtest_latency_ms{instance="a"}[10s])')
        return top is not None and top > 1000

    await until(spike_scraped, seconds=30, what="the old spike in Prometheus")
    collector.spiked = None
    headers = auth_headers(ACCOUNT)
    async with httpx.AsyncClient(base_url=service, timeout=30) as client:
        await create_detector(
            client,
            "latency",
            account=ACCOUNT,
            metric_source=source(prometheus, step_seconds=1, lookback_seconds=60),
            group_by=["instance"],
            algorithm="ewma",
            params={"alpha": 0.1, "warmup": 3, "min_std": 5.0},
            thresholds={"score": 0.999, "direction": "up", "page_max_age_seconds": None},
            escalation_policy_id="ops",
        )

        async def series() -> dict[str, dict[str, Any]]:
            return await series_by_instance(client, "latency", headers)

        async def all_active() -> bool:
            found = await series()
            return set(found) == set(INSTANCES) and all(
                s["counts"]["points"] >= 15 and s["status"] == "active" for s in found.values()
            )

        await until(all_active, seconds=60, what="15 points of each instance via the poller")
        backfilled = await series()
        # the old spike was backfilled and judged an anomaly, and paged nobody
        assert backfilled["a"]["counts"]["anomalies"] >= 1, backfilled["a"]
        assert standin.opened() == []
        before = {name: s["counts"]["points"] for name, s in backfilled.items()}
        anomalies_before = {name: s["counts"]["anomalies"] for name, s in backfilled.items()}

        pages = await spike_until_paged(collector, standin, series, before)
        found = await series()
        status = (await client.get("/api/v1/detectors/latency", headers=headers)).json()[
            "source_status"
        ]

    assert_one_page_naming(standin, pages, "b", ACCOUNT)
    assert found["b"]["counts"]["anomalies"] >= 1
    for quiet in ("a", "c"):
        assert found[quiet]["counts"]["anomalies"] == anomalies_before[quiet], quiet
    assert status["last_error"] is None and status["polls"] >= 10
    assert status["lag_seconds"] is not None and status["lag_seconds"] < 10
