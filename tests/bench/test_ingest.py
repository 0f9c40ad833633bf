"""`nsentry bench ingest` end to end on a small load: it runs and measures both sides."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from services.common.embedded import EmbeddedPostgres
from tests.conftest import REPO_ROOT


async def test_bench_ingest_measures_service_and_references(pg_server: EmbeddedPostgres) -> None:
    command = [
        sys.executable, "-m", "services.cli", "bench", "ingest",
        "--batches", "2", "--batch-size", "300", "--detectors", "3",
        "--connections", "2", "--seconds", "0.5", "--warmup-seconds", "0.2",
        "--database-url", pg_server.uri(), "--json",
    ]  # fmt: skip
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("bulk_points_per_s", "copy_rows_per_s", "single_rps", "bare_rps"):
        assert measured[key] > 0, key
    assert measured["bulk_ratio"] == measured["bulk_points_per_s"] / measured["copy_rows_per_s"]
    assert measured["single_p50_ms"] <= measured["single_p99_ms"]
    assert "ratio" in result.stdout and "raw asyncpg COPY" in result.stdout
