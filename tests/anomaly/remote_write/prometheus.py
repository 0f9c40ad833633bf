"""A real Prometheus for the tests: Debian's package (installed with apt-get when
missing, as the nginx fixture does), run on a free port with a config the test writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

INSTALL_TIMEOUT_SECONDS = 600


def find_prometheus() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    candidate = "/usr/bin/prometheus"
    return candidate if os.access(candidate, os.X_OK) else None


def install_prometheus() -> tuple[str | None, str]:
    """Prometheus from Debian's archive when missing; (path or None, why not)."""
    found = find_prometheus()
    if found:
        return found, ""
    if os.geteuid() != 0:
        return None, "prometheus is not installed and installing it needs root (apt-get)"
    if not shutil.which("apt-get"):
        return None, "prometheus is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # no system Prometheus left running on :9090 after the install
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        added_policy = True
    log: list[str] = []
    try:
        for command in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
        ):
            result = subprocess.run(
                command,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
            if result.returncode != 0:
                log.append(f"{' '.join(command)}: {result.stderr.strip()[-300:]}")
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)
    found = find_prometheus()
    if found:
        return found, ""
    return None, "could not install prometheus with apt-get: " + " | ".join(log)[-600:]


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
