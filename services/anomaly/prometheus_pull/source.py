"""PURE: a Prometheus pull source (``metric_source.type = "prometheus"``): its fields
checked, its secrets split from what is stored with the detector, its status shown.

The secrets are the ``bearer`` token and the values of ``headers`` (a tenant's
``X-Scope-OrgID`` or an API key are as secret as a token). The detector row keeps
``metric_source`` with each secret replaced by :data:`MASK`, so that no answer of the
API (nor Hasura's select) shows them; the values themselves live in
``np_anomaly_pull_state`` (``store.py``). A PATCH that sends :data:`MASK` back for a
secret keeps the stored value, so that a GET's answer can be sent back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

PROMETHEUS = "prometheus"
MASK = "<redacted>"
STEP_DEFAULT = 60
STEP_MAX = 86_400
LOOKBACK_DEFAULT = 86_400
LOOKBACK_MAX = 31 * 86_400
QUERY_MAX = 20_000
HEADERS_MAX = 20
HEADER_VALUE_MAX = 4_096
BEARER_MAX = 8_192
URL_MAX = 2_048
# the fields a prometheus source has (besides `type`)
FIELDS = ("url", "query", "step_seconds", "lookback_seconds", "headers", "bearer")
# headers the client sets itself, or that would change the request's framing
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "accept"}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VALUE = re.compile(r"^[\x20-\x7e\t]*$")


def _int(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"metric_source.{name}: must be an integer")
    if not low <= value <= high:
        raise ValueError(f"metric_source.{name}: must be between {low} and {high}")
    return value


def check_prometheus(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a prometheus source checked and normalised (defaults filled);
    ValueError naming ``metric_source.<field>`` otherwise. The URL's destination
    (private addresses, the allow-list) is checked by the routes, which know the
    settings."""
    url = fields.get("url")
    if not isinstance(url, str) or not url:
        raise ValueError(
            "metric_source.url: a prometheus source needs the server's URL, "
            "e.g. http://prometheus:9090"
        )
    if len(url) > URL_MAX:
        raise ValueError(f"metric_source.url: must be at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("metric_source.url: is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("metric_source.url: must be an http or https URL")
    if parts.query or parts.fragment:
        raise ValueError("metric_source.url: must have no query or fragment")
    query = fields.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError(
            'metric_source.query: a prometheus source needs a PromQL query, e.g. up{job="api"}'
        )
    if len(query) > QUERY_MAX:
        raise ValueError(f"metric_source.query: must be at most {QUERY_MAX} characters")
    step = _int(fields.get("step_seconds"), "step_seconds", STEP_DEFAULT, 1, STEP_MAX)
    lookback = _int(
        fields.get("lookback_seconds"), "lookback_seconds", LOOKBACK_DEFAULT, 0, LOOKBACK_MAX
    )
    headers = fields.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise ValueError("metric_source.headers: must be an object of header names to values")
    if len(headers) > HEADERS_MAX:
        raise ValueError(f"metric_source.headers: at most {HEADERS_MAX} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise ValueError(f"metric_source.headers: {name!r} is not a header name")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"metric_source.headers: {name} is set by the poller itself")
        if name.lower() in seen:
            raise ValueError(f"metric_source.headers: {name} is given twice")
        seen.add(name.lower())
        if not isinstance(value, str) or len(value) > HEADER_VALUE_MAX or not _VALUE.match(value):
            raise ValueError(
                f"metric_source.headers.{name}: must be printable ASCII text of at most "
                f"{HEADER_VALUE_MAX} characters"
            )
    bearer = fields.get("bearer")
    if bearer is not None:
        if not isinstance(bearer, str) or not bearer or len(bearer) > BEARER_MAX:
            raise ValueError(
                f"metric_source.bearer: must be a token of 1 to {BEARER_MAX} characters"
            )
        if not _VALUE.match(bearer) or "\t" in bearer:
            raise ValueError("metric_source.bearer: must be printable ASCII")
        if "authorization" in seen:
            raise ValueError(
                "metric_source.bearer: give either bearer or an Authorization header, not both"
            )
    return {
        "url": url,
        "query": query,
        "step_seconds": step,
        "lookback_seconds": lookback,
        "headers": dict(headers),
        "bearer": bearer,
    }


@dataclass(frozen=True)
class Secrets:
    """A source's secrets as sent (a value may be :data:`MASK`: keep the stored one)."""

    bearer: str | None
    headers: dict[str, str]

    def merged(self, stored: Secrets | None) -> Secrets:
        """These secrets, a masked value replaced by the stored value of the same name
        (a masked value with nothing stored is dropped)."""
        old_headers = {k.lower(): v for k, v in (stored.headers if stored else {}).items()}
        headers = {}
        for name, value in self.headers.items():
            if value == MASK:
                if name.lower() in old_headers:
                    headers[name] = old_headers[name.lower()]
            else:
                headers[name] = value
        bearer = self.bearer
        if bearer == MASK:
            bearer = stored.bearer if stored else None
        return Secrets(bearer, headers)


def split_secrets(source: dict[str, Any]) -> tuple[dict[str, Any], Secrets]:
    """A checked prometheus source as stored with the detector (secrets masked), and
    its secrets."""
    secrets = Secrets(source.get("bearer"), dict(source.get("headers") or {}))
    stored = {k: v for k, v in source.items() if k not in ("bearer", "headers")}
    if secrets.headers:
        stored["headers"] = {name: MASK for name in secrets.headers}
    if secrets.bearer is not None:
        stored["bearer"] = MASK
    return stored, secrets


def source_key(source: dict[str, Any]) -> str:
    """What makes a source's series: a new URL or query starts it over (backfill)."""
    return f"{source.get('url')}\n{source.get('query')}"


@dataclass(frozen=True)
class PullSource:
    """What the poller needs of a detector's source (secrets included)."""

    url: str
    query: str
    step: int
    lookback: int
    headers: dict[str, str]
    bearer: str | None

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        return headers


def pull_source(
    metric_source: dict[str, Any], bearer: str | None, headers: dict[str, str] | None
) -> PullSource:
    """The source of a stored ``metric_source`` and its stored secrets; KeyError,
    TypeError or ValueError for one that was not stored through the API."""
    step = int(metric_source.get("step_seconds") or STEP_DEFAULT)
    lookback = int(metric_source.get("lookback_seconds") or 0)
    url, query = metric_source["url"], metric_source["query"]
    if not (isinstance(url, str) and isinstance(query, str)) or step < 1 or lookback < 0:
        raise ValueError("not a prometheus source")
    return PullSource(url, query, step, lookback, dict(headers or {}), bearer)


def source_status(row: Any, now: datetime) -> dict[str, Any] | None:
    """``source_status`` of a detector answer: None but for pull sources. ``row`` maps
    the detector's ``metric_source`` and the ``pull_*`` columns of its state row (absent
    or None: not polled yet). ``lag_seconds``: how far the newest stored evaluation
    instant is behind ``now`` (None before the first poll)."""
    source = row["metric_source"] or {}
    if not isinstance(source, dict) or source.get("type") != PROMETHEUS:
        return None
    position = row["pull_position"]
    lag = None if position is None else max(0.0, (now - position).total_seconds())
    return {
        "last_success_at": row["pull_last_success_at"],
        "last_error": row["pull_last_error"],
        "last_error_at": row["pull_last_error_at"],
        "lag_seconds": lag,
        "position": position,
        "polls": row["pull_polls"] or 0,
        "errors": row["pull_errors"] or 0,
        "skipped": row["pull_skipped"] or 0,
    }
