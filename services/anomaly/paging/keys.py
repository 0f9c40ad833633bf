"""How a paged episode is named: its dedup key, and when the paging worker ends it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.anomaly.series import EMPTY
from services.anomaly.thresholds import Thresholds, episode_end


def iso(ts: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def dedup_key(account: str, detector_id: str, series_key: str, episode_start: datetime) -> str:
    """``anomaly:<account>:<detector>:<series>:<episode start>``: an episode of a series
    pages once. The series is its canonical key (``{"instance":"b"}``); the empty series
    of a plain detector leaves it out (``anomaly:<account>:<detector>:<episode start>``),
    so the keys of episodes opened before series existed still match."""
    if series_key == EMPTY:
        return f"anomaly:{account}:{detector_id}:{iso(episode_start)}"
    return f"anomaly:{account}:{detector_id}:{series_key}:{iso(episode_start)}"


def open_episode(
    account: str,
    detector_id: str,
    series_key: str,
    policy: Thresholds,
    state: dict[str, Any] | None,
) -> tuple[str | None, datetime | None]:
    """The open paged episode's dedup key and when the paging worker ends it if no point
    comes (``thresholds.episode_end``); (None, None): nothing for it to resolve."""
    ends = episode_end(policy, state)
    if ends is None or state is None:
        return None, None
    start = from_epoch(state["episode_start"])
    return dedup_key(account, detector_id, series_key, start), from_epoch(ends)
