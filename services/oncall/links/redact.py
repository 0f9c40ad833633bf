"""Tokens stay out of the logs: the access log's paths are redacted.

Links (``/api/v1/links/<token>``), calendar feeds (``/api/v1/feeds/<token>.ics``) and
integration keys (``?token=``) carry their credential in the URL, which uvicorn's access
log would write out. This filter replaces each with ``[redacted]`` in the log record.
"""

from __future__ import annotations

import logging
import re

_PATH = re.compile(r"(/api/v1/(?:links|feeds)/)[^/?#\s]+")
_QUERY = re.compile(r"([?&]token=)[^&#\s]+")


def redact(text: str) -> str:
    return _QUERY.sub(r"\1[redacted]", _PATH.sub(r"\1[redacted]", text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Redact uvicorn's access log (idempotent)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
