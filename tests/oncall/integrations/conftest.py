"""Fixtures of the integration tests: a real Alertmanager binary (installed when missing),
and `am_api`, which starts Alertmanager processes posting to a webhook URL."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oncall.helpers import free_port
from tests.oncall.integrations import alertmanager
from tests.oncall.integrations.alertmanager import install_alertmanager, until


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """Debian's prometheus-alertmanager; apt-get installs it when missing. Skipped with
    the reason only when it cannot be had (no root, no apt-get, no network)."""
    binary, why = install_alertmanager()
    if binary is None:
        pytest.skip(why)
    return binary


@pytest.fixture
async def am_api(alertmanager_binary: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    folder = Path(tempfile.mkdtemp(prefix="nsentry-am-"))
    processes: list[subprocess.Popen[bytes]] = []

    async def start(webhook_url: str, bearer: str | None = None) -> httpx.AsyncClient:
        port = free_port()
        processes.append(alertmanager.start(alertmanager_binary, folder, webhook_url, port, bearer))
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5)

        async def ready() -> bool | None:
            if processes[0].poll() is not None:
                log = (folder / "alertmanager.log").read_text()[-2000:]
                raise AssertionError(f"alertmanager exited: {log}")
            try:
                return (await client.get("/-/ready")).status_code == 200 or None
            except httpx.TransportError:
                return None

        await until(ready, 60)
        return client

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(folder, ignore_errors=True)
