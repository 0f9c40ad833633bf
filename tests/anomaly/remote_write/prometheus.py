"""A real Prometheus for the tests: Debian's package (installed with apt-get when
missing, as the nginx fixture does), run on a free port with a config the test writes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from tests.debian import install, which


def find_prometheus() -> str | None:
    return which(("prometheus",), ("/usr/bin/prometheus",))


def install_prometheus() -> tuple[str | None, str]:
    """Prometheus from Debian's archive when missing; (path or None, why not)."""
    return install("prometheus", ("prometheus",), find_prometheus)


def config(
    *, exporter: str, write_url: str, secret: str, account: str, interval: str = "200ms"
) -> str:
    """Scrape ``exporter`` (its own ``instance`` labels kept: honor_labels) and remote
    write everything to ``write_url`` with the plugin secret and the account header,
    exactly the block docs/anomaly-api.md gives operators."""
    return f"""
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: rwtest
    honor_labels: true
    static_configs:
      - targets: ["{exporter}"]
remote_write:
  - url: "{write_url}"
    authorization:
      credentials: "{secret}"
    headers:
      X-Hasura-Source-Account-Id: "{account}"
    queue_config:
      batch_send_deadline: 200ms
      min_backoff: 50ms
      max_backoff: 500ms
"""


def scrape_config(*, exporter: str, job: str, interval: str = "1s") -> str:
    """Scrape ``exporter`` only (its ``instance`` labels kept): the server the Prometheus
    pull tests query (tests/anomaly/prometheus_pull/)."""
    return f"""
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: {job}
    honor_labels: true
    static_configs:
      - targets: ["{exporter}"]
"""


class PrometheusServer:
    """A Prometheus process on a fixed port and data directory, so that it can be
    stopped and started again with its data (the pull tests' outage)."""

    def __init__(self, binary: str, directory: Path, config_text: str, port: int) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        (directory / "prometheus.yml").write_text(config_text)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = (self.directory / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self) -> str:
        return (self.directory / "prometheus.log").read_text(errors="replace")[-2000:]
