"""`nsentry bench console` end to end on a small data set (the real processes)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from services.common.embedded import EmbeddedPostgres
from tests.conftest import REPO_ROOT


async def test_bench_console_times_every_page(pg_server: EmbeddedPostgres) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "services.cli",
            "bench",
            "console",
            "--detectors",
            "3",
            "--days",
            "0.2",
            "--repeat",
            "2",
            "--database-url",
            pg_server.uri(),
            "--json",
        ],  # fmt: skip
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["pages"]) >= {"overview", "detector 7d", "alert", "schedule (2 weeks)"}
    assert all(row["median_ms"] > 0 for row in report["pages"].values())
