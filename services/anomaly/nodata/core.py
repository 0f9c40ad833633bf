"""PURE: which series start a silence and which silences end (no-data alerts).

A detector with ``no_data_seconds`` watches each of its series for silence: a series
that has reported (it has a last point) and then sends nothing for ``no_data_seconds``
records one anomaly of kind ``no_data``, and that anomaly pages like the first anomaly
of an episode. The silence stays open, and nothing more is recorded for it however many
checks find the series still silent, until a point newer than the last one before the
silence arrives: the silence ends and its alert is resolved (unless ``auto_resolve`` is
off). Turning ``no_data_seconds`` off, or disabling the detector, ends open silences too.

Rules, as for the other anomalies (``thresholds.py``):

* a silence pages when the detector has an escalation policy and the silence began
  (last point + ``no_data_seconds``) no more than ``page_max_age_seconds`` before the
  check: enabling ``no_data_seconds`` on a detector whose series stopped reporting last
  month records the silences and pages nobody, as a backfill of old points does;
* a series still learning pages (like a static bound: going quiet needs no model);
* a series that never reported (no last point) never starts a silence.

Plain values in (epoch seconds), plain values out; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

#: bounds of ``no_data_seconds``: a minute (finer than the check interval makes no
#: sense) to 30 days
MIN_NO_DATA_SECONDS = 60
MAX_NO_DATA_SECONDS = 30 * 86400


@dataclass(frozen=True)
class SeriesWatch:
    """One series as the check sees it. ``key`` is the caller's identity of the series
    (returned as is). Times are epoch seconds."""

    key: Hashable
    last_ts: float | None  # its latest point (None: it never reported)
    silent_since: float | None  # the open silence: its last point when recorded (None: none)
    no_data_seconds: float | None  # the detector's setting (None: off)
    enabled: bool = True
    interval: float | None = None  # seconds between its two latest points (None: unknown)
    pages: bool = False  # the detector has an escalation policy
    page_max_age_seconds: float | None = 3600.0
    auto_resolve: bool = True


@dataclass(frozen=True)
class Start:
    """A silence to record: its anomaly at ``at`` (the check), the last point ``since``."""

    key: Hashable
    at: float
    since: float
    explanation: str
    page: bool


@dataclass(frozen=True)
class End:
    """An open silence that ends: ``by`` is ``data`` (a newer point came) or ``off``
    (no_data_seconds off, or the detector disabled); ``resolve``: queue the resolve of
    the alert it opened (if it opened one)."""

    key: Hashable
    by: str
    resolve: bool


@dataclass(frozen=True)
class Decision:
    starts: list[Start]
    ends: list[End]


def decide(series: Iterable[SeriesWatch], now: float) -> Decision:
    """The silences that start and end at ``now``."""
    starts: list[Start] = []
    ends: list[End] = []
    for s in series:
        watching = s.enabled and s.no_data_seconds is not None
        if s.silent_since is not None:
            if s.last_ts is not None and s.last_ts > s.silent_since:
                ends.append(End(s.key, "data", s.auto_resolve))
            elif not watching:
                ends.append(End(s.key, "off", s.auto_resolve))
            continue
        if not watching or s.last_ts is None:
            continue
        assert s.no_data_seconds is not None
        silent_for = now - s.last_ts
        if silent_for < s.no_data_seconds:
            continue
        began = s.last_ts + s.no_data_seconds
        fresh = s.page_max_age_seconds is None or now - began <= s.page_max_age_seconds
        starts.append(
            Start(
                s.key,
                at=now,
                since=s.last_ts,
                explanation=explain(silent_for, s.last_ts, s.interval),
                page=s.pages and fresh,
            )
        )
    return Decision(starts, ends)


def explain(silent_for: float, since: float, interval: float | None) -> str:
    """``no data for 15 min since 12:03:00Z; expected every ~60 s``."""
    text = f"no data for {duration(silent_for)} since {clock_time(since)}"
    if interval is not None and interval > 0:
        text += f"; expected every ~{duration(interval)}"
    return text


def duration(seconds: float) -> str:
    """A rounded span: ``45 s``, ``15 min``, ``3 h``, ``2 d``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def clock_time(epoch: float) -> str:
    """The instant in UTC to the second: ``2026-11-01T12:03:00Z``."""
    moment = datetime.fromtimestamp(epoch, UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")
