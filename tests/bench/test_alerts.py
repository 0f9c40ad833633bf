"""`nsentry bench alerts` end to end: real service and worker processes, a real sink."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from services.common.embedded import EmbeddedPostgres
from tests.conftest import REPO_ROOT


async def test_every_alert_pages_once_through_the_worker_process(
    pg_server: EmbeddedPostgres,
) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "services.cli",
            "bench",
            "alerts",
            "--alerts",
            "25",
            "--concurrency",
            "5",
            "--timeout",
            "60",
            "--database-url",
            pg_server.uri(),
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["alerts"] == 25 and measured["delivered"] == 25
    # at least once, and here exactly once: no first page was sent twice
    assert measured["webhook_requests"] == 25
    assert 0 < measured["p50_seconds"] <= measured["p99_seconds"] <= measured["max_seconds"]
