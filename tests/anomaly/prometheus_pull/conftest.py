"""Fixtures of the Prometheus pull tests: a real Prometheus (Debian's 2.42) scraping
the remote-write tests' exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.anomaly.prometheus_pull.support import start_prometheus
from tests.anomaly.remote_write.prometheus import PrometheusServer
from tests.anomaly.remote_write.test_prometheus import (  # noqa: F401 - fixtures
    Exporter,
    exporter,
    prometheus_binary,
)


@pytest.fixture
async def prometheus(
    prometheus_binary: str,  # noqa: F811
    exporter: tuple[Exporter, str],  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[PrometheusServer]:
    server = await start_prometheus(prometheus_binary, tmp_path, exporter[1])
    yield server
    server.stop()
