"""A real Prometheus Alertmanager for the tests: Debian's `prometheus-alertmanager`
(0.25 on bookworm), installed with apt-get when missing, as the nginx fixture does
(tests/deploy/support.py), run on free local ports with a webhook receiver."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.debian import install, which

CANDIDATES = ("/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager")


def find_alertmanager() -> str | None:
    return which(("prometheus-alertmanager", "alertmanager"), CANDIDATES)


def install_alertmanager() -> tuple[str | None, str]:
    """The binary (installed from Debian's archive when missing), or None and why not."""
    return install("prometheus-alertmanager", ("prometheus-alertmanager",), find_alertmanager)


def config(webhook_url: str, bearer: str | None = None) -> str:
    """Alertmanager's configuration: every alert to one webhook receiver, grouped per
    alert, with waits of a second so that a test runs in seconds; with `bearer`, the
    key goes as `Authorization: Bearer` (http_config) instead of in the URL."""
    auth = (
        f"\n        http_config:\n          authorization:\n            credentials: '{bearer}'"
        if bearer
        else ""
    )
    return f"""
global:
  # alerts posted without endsAt end this long after (the test resolves by endsAt)
  resolve_timeout: 10m
route:
  receiver: nsentry
  group_by: ['alertname', 'instance']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: nsentry
    webhook_configs:
      - url: '{webhook_url}'
        send_resolved: true
        max_alerts: 0{auth}
"""


def start(
    binary: str, folder: Path, webhook_url: str, port: int, bearer: str | None = None
) -> subprocess.Popen[bytes]:
    (folder / "alertmanager.yml").write_text(config(webhook_url, bearer))
    (folder / "data").mkdir(exist_ok=True)
    with (folder / "alertmanager.log").open("wb") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'alertmanager.yml'}",
                f"--storage.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no HA cluster: no gossip settle wait
                "--log.level=debug",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], seconds: float = 30.0) -> T:
    """Poll `check` until it answers something (Alertmanager runs on its own clock)."""
    async with asyncio.timeout(seconds):
        while True:
            found = await check()
            if found is not None:
                return found
            await asyncio.sleep(0.1)


def am_alert(ends: datetime | None = None) -> list[dict[str, Any]]:
    alert: dict[str, Any] = {
        "labels": {"alertname": "DiskFull", "instance": "db1:9100", "severity": "critical"},
        "annotations": {"summary": "Disk full on db1", "description": "/var at 99%"},
        "generatorURL": "http://prometheus.test/graph?g0.expr=disk",
    }
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    return [alert]
