"""The series part of the points route: which series of the detector to draw.

A detector watches one or more series, each a label set stored canonically as its
key (`services/anomaly/series.py`). `labels` names one series exactly, written as
comma-separated `name=value` pairs (`host=db1,region=eu`; the empty set for a plain
detector's series). Without it the detector's first series (in creation order) is
drawn, which for a plain detector is its only one; the answer says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from services.anomaly.series import EMPTY, canonical, labels_of

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
MAX_PAIRS = 32
# the OpenAPI pattern of the parameter: what it admits is parsed without a 422
PATTERN = rf"^({_NAME}=[^,]*(,{_NAME}=[^,]*){{0,{MAX_PAIRS - 1}}})?$"

_FIRST_SERIES_SQL = """
SELECT series_key FROM np_anomaly_series
 WHERE source_account_id = $1 AND detector_id = $2
 ORDER BY created_at, id LIMIT 1
"""


@dataclass(frozen=True)
class Selector:
    labels: dict[str, str] | None = None  # None: not given
    contradictory: bool = False  # a name given twice with two values: no series has both
    given: bool = field(default=False)


def parse_labels(text: str | None) -> Selector:
    """The selector (the parameter's pattern has been checked by the route)."""
    if text is None:
        return Selector()
    labels: dict[str, str] = {}
    contradictory = False
    for part in filter(None, text.split(",")):
        name, _, value = part.partition("=")
        if name in labels and labels[name] != value:
            contradictory = True
        labels.setdefault(name, value)
    return Selector(labels, contradictory, given=True)


async def series_key(
    conn: asyncpg.Connection, *, account: str, detector_id: str, selector: Selector
) -> str | None:
    """The key of the series to draw; None when the selector can match none."""
    if selector.contradictory:
        return None
    if selector.given and selector.labels is not None:
        return canonical(selector.labels)
    key = await conn.fetchval(_FIRST_SERIES_SQL, account, detector_id)
    return str(key) if key is not None else EMPTY


def labels_of_key(key: str | None, selector: Selector) -> dict[str, str]:
    if key is None:
        return dict(selector.labels or {})
    return labels_of(key)
