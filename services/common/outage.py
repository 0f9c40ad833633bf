"""Database outages: which failures mean "Postgres is unreachable", the 503 they
answer, and a log that says so once per distinct failure per interval.

While the database is down, every request would otherwise fail the same way,
hundreds of times a second, each with a traceback. Instead:

- ``outage_kind`` classifies an exception: a connection-level failure (refused,
  reset, closed mid-query, the server shutting down or still starting, too many
  clients, a timeout reaching it) gives a short stable *kind*, anything else None;
- ``DatabaseUnavailable`` is the 503 ``service_unavailable`` ``ApiError`` with a
  ``Retry-After`` header (``db.tenant_transaction`` raises it in place of such a
  failure, so callers that map ``ApiError`` need nothing more);
- ``report`` logs one WARNING line per kind per interval (no traceback), with how
  many more occurrences it held back since the previous line, and counts every
  occurrence in ``nsentry_db_unavailable_total{kind}``.

asyncpg's pool recovers by itself: a connection the server closed is noticed by
its protocol and reconnected on the next acquire; ``tenant_transaction``
terminates a connection whose failure left it unusable.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from prometheus_client import Counter

from services.common.errors import DatabaseUnavailable

log = logging.getLogger("nsentry.outage")

LOG_INTERVAL_SECONDS = 30.0

DB_UNAVAILABLE = Counter(
    "nsentry_db_unavailable_total",
    "Failures to reach PostgreSQL (answered 503, or a background pass skipped), by kind",
    ["kind"],
)

# SQLSTATEs that say the server is going away, not up yet, or full: 57P01
# admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53300
# too_many_connections; class 08 (connection exceptions) is matched by class.
_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# asyncpg's InterfaceError also covers misuse (an operation already in progress):
# only the messages of a closed connection or pool mean an outage
_CLOSED = re.compile(r"connection (is|was|has been) closed|pool is clos", re.IGNORECASE)
_CREDENTIALS = re.compile(r"(://)[^/@\s]*@")


def _kind_of(exc: BaseException) -> str | None:
    if isinstance(exc, DatabaseUnavailable):
        return exc.kind
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith("08") or state in _SQLSTATES:
            return f"{exc.__class__.__name__} ({state})"
        return None
    if isinstance(exc, asyncpg.InterfaceError):
        return "InterfaceError (connection closed)" if _CLOSED.search(str(exc)) else None
    if isinstance(exc, ConnectionError | socket.gaierror | TimeoutError):
        return exc.__class__.__name__
    if isinstance(exc, OSError) and exc.errno is not None:
        # a Unix socket that is gone while the server is down (FileNotFoundError), an
        # unreachable host or network
        if exc.errno in {errno.ENOENT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}:
            return exc.__class__.__name__
    return None


def outage_kind(exc: BaseException) -> str | None:
    """The kind of database outage ``exc`` is (or was explicitly raised from), else None."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        kind = _kind_of(current)
        if kind is not None:
            return kind
        current = current.__cause__
        seen += 1
    return None


def redact(text: str) -> str:
    """``text`` without the credentials of a connection string, at most 200 characters."""
    return _CREDENTIALS.sub(r"\1***@", text)[:200]


class OutageLog:
    """One log line per distinct failure kind per ``interval`` seconds."""

    def __init__(
        self,
        logger: logging.Logger = log,
        *,
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, kind: str, where: str, exc: BaseException | None = None) -> bool:
        """Record one occurrence; returns whether it was logged."""
        DB_UNAVAILABLE.labels(kind).inc()
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        detail = "" if exc is None else f": {redact(str(exc))}"
        more = f" ({held} more since the last line)" if held else ""
        self.logger.warning(
            "database unavailable (%s%s) at %s%s",
            kind,
            detail,
            where,
            more,
        )
        return True

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
            self._held.clear()


# the process's log of outages: every request and background loop reports to it
outages = OutageLog()


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """``exc`` as the 503 to raise in its place, or None when it is no outage."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    kind = outage_kind(exc)
    return None if kind is None else DatabaseUnavailable(kind)


def graphql_outage(errors: Sequence[Any] | None) -> DatabaseUnavailable | None:
    """The outage among a GraphQL result's errors (a resolver's ``DatabaseUnavailable``,
    whether re-raised as a GraphQL error with its code or passed through), else None."""
    for error in errors or ():
        original = getattr(error, "original_error", None)
        if original is not None:
            down = unavailable(original)
            if down is not None:
                return down
        extensions = getattr(error, "extensions", None) or {}
        if extensions.get("code") == DatabaseUnavailable.code:
            details = extensions.get("details") or {}
            return DatabaseUnavailable(str(details.get("reason", "unknown")))
    return None


class _QuietGraphQLOutages(logging.Filter):
    """Strawberry logs every error of a result; an outage is logged once by the 503."""

    def filter(self, record: logging.LogRecord) -> bool:
        return graphql_outage([record.msg]) is None


_QUIET = _QuietGraphQLOutages()
Router = TypeVar("Router")


def answer_graphql_outages(router: Router) -> Router:
    """A Strawberry router that answers a database outage met by any resolver with the
    503 ``service_unavailable`` envelope (raised to the app's handlers, logged there
    once per kind per interval), not with a 200 carrying errors."""
    process = router.process_result  # type: ignore[attr-defined]

    async def process_result(request: Any, result: Any) -> Any:
        down = graphql_outage(result.errors)
        if down is not None:
            raise down
        return await process(request=request, result=result)

    router.process_result = process_result  # type: ignore[attr-defined]
    strawberry_log = logging.getLogger("strawberry.execution")
    if _QUIET not in strawberry_log.filters:
        strawberry_log.addFilter(_QUIET)
    return router


__all__ = [
    "DatabaseUnavailable",
    "OutageLog",
    "answer_graphql_outages",
    "graphql_outage",
    "outage_kind",
    "outages",
    "redact",
    "unavailable",
]
