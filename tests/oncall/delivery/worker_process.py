"""The on-call worker as a process of its own, for the tests that kill it (`kill -9`).

`python -m tests.oncall.delivery.worker_process '<json>'` runs the production loop
(`services.oncall.worker.run_worker`) against the given database until SIGTERM;
the JSON sets the lease, the send deadline, the attempt limit, the bounds on
sends in flight, and a clock skew in seconds (a restarted worker "later" than
the one it replaces: leases have run out without the test waiting for them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.outbox import RetryPolicy
from services.oncall.worker import run_worker
from tests.conftest import make_settings
from tests.oncall.helpers import SIGNING_SECRET


async def serve(config: dict[str, Any]) -> None:
    settings = make_settings(
        config["database_url"],
        oncall_allowed_destinations="127.0.0.1",
        webhook_signing_secret=SIGNING_SECRET,
    )
    skew = timedelta(seconds=float(config.get("skew_seconds", 0)))
    options = {
        "lease": timedelta(seconds=float(config["lease_seconds"])),
        "send_seconds": float(config["send_seconds"]),
        "retry": RetryPolicy(max_attempts=int(config["max_attempts"])),
        "concurrency": int(config.get("concurrency", 4)),
        "per_origin": int(config.get("per_origin", 4)),
    }
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await run_worker(
        settings,
        stop,
        clock=lambda: datetime.now(UTC) + skew,
        poll_seconds=0.2,
        options=options,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    asyncio.run(serve(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
