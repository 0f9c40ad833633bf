"""A real Prometheus (Debian's 2.42) scraping a tiny exporter and remote writing to the
service: one anomaly injected into one instance's metric opens one alert naming that
instance; the other two series stay quiet."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tests.anomaly.conftest import (
    assert_one_page_naming,
    create_detector,
    series_by_instance,
    until,
)
from tests.anomaly.oncall_standin import OncallStandIn, Received, free_port
from tests.anomaly.remote_write.prometheus import config, install_prometheus
from tests.conftest import account_jwt, auth_headers

ACCOUNT = "rw-prometheus"
INSTANCES = ("a", "b", "c")


class Exporter(Collector):
    """``rwtest_latency_ms{instance=...}``: 100 or 101 by turns, unless spiked."""

    def __init__(self) -> None:
        self.scrapes = 0
        self.spiked: str | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.scrapes += 1
        family = GaugeMetricFamily("rwtest_latency_ms", "test latency", labels=["instance"])
        for instance in INSTANCES:
            value = 10_000.0 if instance == self.spiked else 100.0 + self.scrapes % 2
            family.add_metric([instance], value)
        yield family


async def spike_until_paged(
    collector: Exporter,
    standin: OncallStandIn,
    series: Callable[[], Awaitable[dict[str, dict[str, Any]]]],
    before: dict[str, int],
) -> list[Received]:
    """Instance b spiked until the stand-in is paged, then normal until every series has
    a dozen points more than ``before``: the pages."""

    async def opened() -> list[Received]:
        return standin.opened()

    collector.spiked = "b"
    pages = await until(opened, seconds=60, what="the alert of instance b")
    collector.spiked = None

    async def moved_on() -> bool:  # a dozen points after the spike, for every series
        found = await series()
        return all(found[i]["counts"]["points"] >= before[i] + 12 for i in INSTANCES)

    await until(moved_on, seconds=60, what="more points after the spike")
    return pages


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    binary, why = install_prometheus()
    if binary is None:
        pytest.skip(why)
    return binary


@pytest.fixture
def exporter() -> Iterator[tuple[Exporter, str]]:
    registry = CollectorRegistry()
    collector = Exporter()
    registry.register(collector)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield collector, f"127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def run_prometheus(
    prometheus_binary: str, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []

    def run(config_text: str) -> subprocess.Popen[bytes]:
        (tmp_path / "prometheus.yml").write_text(config_text)
        log = (tmp_path / "prometheus.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{free_port()}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for log in logs:
        log.close()


async def test_one_spiked_instance_opens_one_alert_naming_it(
    service: str,
    standin: OncallStandIn,
    exporter: tuple[Exporter, str],
    run_prometheus: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    collector, target = exporter
    headers = auth_headers(ACCOUNT)
    async with httpx.AsyncClient(base_url=service, timeout=30) as client:
        await create_detector(
            client,
            "latency",
            account=ACCOUNT,
            metric_source={"type": "remote_write", "match": 'rwtest_latency_ms{job="rwtest"}'},
            group_by=["instance"],
            algorithm="ewma",
            params={"alpha": 0.1, "warmup": 10, "min_std": 5.0},
            thresholds={"score": 0.999, "direction": "up"},
            escalation_policy_id="ops",
        )
        process = run_prometheus(
            config(
                exporter=target,
                write_url=f"{service}/api/v1/write",
                # Debian's Prometheus 2.42 does not send the remote_write `headers`
                # (prometheus/prometheus#13030), so the plugin secret would land every
                # sample in the default account; a JWT carries the account itself
                secret=account_jwt(ACCOUNT),
                account=ACCOUNT,
            )
        )

        async def series() -> dict[str, dict[str, Any]]:
            if process.poll() is not None:
                log = (tmp_path / "prometheus.log").read_text()[-2000:]
                raise AssertionError(f"prometheus exited {process.returncode}: {log}")
            return await series_by_instance(client, "latency", headers)

        seen: dict[str, Any] = {}

        async def all_active() -> bool:
            found = await series()
            seen.update(found)
            metrics = (await client.get("/metrics")).text
            seen["metrics"] = [
                line
                for line in metrics.splitlines()
                if "write" in line and not line.startswith("#")
            ]
            return set(found) == set(INSTANCES) and all(
                s["counts"]["points"] >= 15 and s["status"] == "active" for s in found.values()
            )

        await until(
            all_active, seconds=60, what="15 points of each instance via remote write", state=seen
        )
        before = {name: s["counts"]["points"] for name, s in (await series()).items()}

        pages = await spike_until_paged(collector, standin, series, before)
        found = await series()

    assert_one_page_naming(standin, pages, "b", ACCOUNT)
    assert found["b"]["counts"]["anomalies"] >= 1
    assert found["a"]["counts"]["anomalies"] == 0 and found["c"]["counts"]["anomalies"] == 0
    # Prometheus' own series (up, scrape_*) matched no detector: only the three are watched
    assert sorted(found) == list(INSTANCES)
