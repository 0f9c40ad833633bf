"""The OpenTelemetry SDK's own OTLP/HTTP metric exporter (gzip, protobuf) sending to the
service over real HTTP: one anomaly injected into one instance's gauge opens one alert
naming that instance; the other two series stay quiet."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from tests.anomaly.conftest import (
    assert_one_page_naming,
    create_detector,
    series_by_instance,
    until,
)
from tests.anomaly.oncall_standin import OncallStandIn
from tests.conftest import auth_headers

ACCOUNT = "otlp-sdk"
INSTANCES = ("a", "b", "c")


class RecordingExporter(OTLPMetricExporter):
    """The SDK's exporter, unchanged, keeping what each export came to."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[MetricExportResult] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.results.append(result)
        return result


class Sender:
    """A meter provider whose reader exports when told (no export thread, no timer):
    a synchronous gauge per instance, set then exported in one OTLP/HTTP request."""

    def __init__(self, endpoint: str) -> None:
        self.exporter = RecordingExporter(
            endpoint=endpoint,
            headers={k: v for k, v in auth_headers(ACCOUNT).items()},
            compression=Compression.Gzip,
            timeout=30,
        )
        self.reader = PeriodicExportingMetricReader(self.exporter, export_interval_millis=math.inf)
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource.create({"service.name": "otlptest", "deployment.environment": "t"}),
        )
        self.gauge = self.provider.get_meter("nsentry-tests").create_gauge(
            "otlptest.latency", unit="ms"
        )

    async def send(self, values: Sequence[tuple[str, float]]) -> None:
        for instance, value in values:
            self.gauge.set(value, {"instance": instance})
        sent = len(self.exporter.results)
        # the exporter blocks (requests): off the loop that serves the service
        await asyncio.to_thread(self.reader.force_flush, 30_000)
        assert self.exporter.results[sent:] == [MetricExportResult.SUCCESS]

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def sender(service: str) -> Iterator[Sender]:
    s = Sender(f"{service}/v1/metrics")
    yield s
    s.close()


async def test_one_spiked_instance_opens_one_alert_naming_it(
    service: str, standin: OncallStandIn, sender: Sender
) -> None:
    headers = auth_headers(ACCOUNT)
    async with httpx.AsyncClient(base_url=service, timeout=30) as client:
        await create_detector(
            client,
            "latency",
            account=ACCOUNT,
            metric_source={
                "type": "otlp",
                "metric": "otlptest.latency",
                "match": {"service_name": "otlptest"},
            },
            group_by=["instance"],
            algorithm="ewma",
            params={"alpha": 0.1, "warmup": 10, "min_std": 5.0},
            thresholds={"score": 0.999, "direction": "up"},
            escalation_policy_id="ops",
        )

        async def series() -> dict[str, dict[str, Any]]:
            return await series_by_instance(client, "latency", headers)

        def normal(round_: int) -> list[tuple[str, float]]:
            return [(i, 100.0 + round_ % 2) for i in INSTANCES]

        for round_ in range(15):
            await sender.send(normal(round_))
        found = await series()
        # each export was stored and scored before its answer: 15 points per instance
        assert {i: s["counts"]["points"] for i, s in found.items()} == dict.fromkeys(INSTANCES, 15)
        assert all(s["status"] == "active" for s in found.values()), found
        assert standin.opened() == []

        await sender.send([("a", 100.0), ("b", 10_000.0), ("c", 100.0)])

        async def opened() -> list[Any]:
            return standin.opened()

        pages = await until(opened, seconds=60, what="the alert of instance b")
        for round_ in range(12):
            await sender.send(normal(round_))
        found = await series()
        metrics = (await client.get("/metrics")).text

    assert_one_page_naming(standin, pages, "b", ACCOUNT)
    assert {i: s["counts"]["points"] for i, s in found.items()} == dict.fromkeys(INSTANCES, 28)
    assert found["b"]["counts"]["anomalies"] >= 1
    assert found["a"]["counts"]["anomalies"] == 0 and found["c"]["counts"]["anomalies"] == 0
    assert 'nsentry_otlp_data_points_total{outcome="routed"}' in metrics
