"""The private PostgreSQL of local mode and tests, through the `pgserver` wheel.

pgserver bundles the server binaries; as root it runs them as a `pgserver`
system user (Postgres refuses root). Connections go over a Unix socket inside
the data folder, so no port is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

DATABASE = "nsentry"


def _quiet_runtime_dir() -> None:
    # platformdirs (used by pgserver) warns when XDG_RUNTIME_DIR is unset
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"nsentry-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


class EmbeddedPostgres:
    """A running pgserver cluster under `data_dir`; `stop()` shuts it down."""

    def __init__(self, data_dir: Path) -> None:
        _quiet_runtime_dir()
        import pgserver  # imported late: it reads XDG_RUNTIME_DIR at import

        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = pgserver.get_server(self.data_dir / "pg", cleanup_mode="stop")

    def uri(self, database: str = "postgres") -> str:
        return str(self._server.get_uri(database))

    def ensure_database(self, name: str = DATABASE) -> str:
        """Create database `name` if missing and return its URI."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad database name {name!r}")

        async def create() -> None:
            conn = await asyncpg.connect(self.uri())
            try:
                found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
                if not found:
                    await conn.execute(f'CREATE DATABASE "{name}"')  # identifier checked above
            finally:
                await conn.close()

        asyncio.run(create())
        return self.uri(name)

    def stop(self) -> None:
        self._server.cleanup()

    def kill(self) -> None:
        """SIGKILL the server and all its processes, as a crash or the OOM killer would
        (outage tests); ``start`` brings it back on the same data and socket."""
        import psutil  # a dependency of pgserver

        postmaster = self._server.get_postmaster_info().process
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)

    def start(self) -> None:
        """Start the server again after ``kill`` (crash recovery replays the WAL)."""
        self._server.ensure_postgres_running()
