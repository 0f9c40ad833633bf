"""A real Prometheus for the tests: Debian's package (installed with apt-get when
missing, as the nginx fixture does), run on a free port with a config the test writes."""

from __future__ import annotations

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
