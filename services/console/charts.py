"""PURE: the detector chart drawn as SVG on the server (no JavaScript needed).

The chart maps time linearly to x and value linearly to y over a declared domain,
written on the `<svg>` as data attributes, so that a reader (or a test) can check
where a mark is. Each anomaly is a focusable mark whose `<title>` holds its time,
value, score and explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

import numpy as np

from services.console.formatting import number, parse_instant, rfc3339, zone

WIDTH, HEIGHT = 960, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


@dataclass
class Chart:
    t0: float
    t1: float
    v0: float
    v1: float
    parts: list[str] = field(default_factory=list)

    def x(self, t: float) -> float:
        span = self.t1 - self.t0 or 1.0
        return round(LEFT + (t - self.t0) / span * (WIDTH - LEFT - RIGHT), 2)

    def y(self, v: float) -> float:
        span = self.v1 - self.v0 or 1.0
        return round(TOP + (self.v1 - v) / span * (HEIGHT - TOP - BOTTOM), 2)


def _domain(points: list[dict[str, Any]], extra: list[dict[str, Any]]) -> tuple[float, float]:
    values: list[float] = []
    for p in points + extra:
        for key in ("value", "lower", "upper"):
            v = p.get(key)
            if v is not None:
                values.append(float(v))
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return low - pad, high + pad


def _stamp(point: dict[str, Any]) -> float:
    moment = parse_instant(point["timestamp"])
    assert moment is not None
    return moment.timestamp()


def _arrays(points: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Time and the three values of every point as arrays (NaN where absent)."""

    def column(key: str) -> np.ndarray:
        return np.array(
            [np.nan if p.get(key) is None else float(p[key]) for p in points], dtype=np.float64
        )

    return {
        "t": np.array([_stamp(p) for p in points], dtype=np.float64),
        "value": column("value"),
        "lower": column("lower"),
        "upper": column("upper"),
    }


def _xs(chart: Chart, t: np.ndarray) -> np.ndarray:
    span = chart.t1 - chart.t0 or 1.0
    return LEFT + (t - chart.t0) / span * (WIDTH - LEFT - RIGHT)


def _ys(chart: Chart, v: np.ndarray) -> np.ndarray:
    span = chart.v1 - chart.v0 or 1.0
    return TOP + (chart.v1 - v) / span * (HEIGHT - TOP - BOTTOM)


def _coords(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))


def _band(chart: Chart, arrays: dict[str, np.ndarray], css: str, label: str) -> str:
    """The expected band as one polygon per run of points that have one."""
    has = ~(np.isnan(arrays["lower"]) | np.isnan(arrays["upper"]))
    xs = _xs(chart, arrays["t"])
    top, bottom = _ys(chart, arrays["upper"]), _ys(chart, arrays["lower"])
    shapes = []
    # runs of consecutive points with a band
    edges = np.flatnonzero(np.diff(np.concatenate([[0], has.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if stop - start < 2:
            continue
        upper = _coords(xs[start:stop], top[start:stop])
        lower = _coords(xs[start:stop][::-1], bottom[start:stop][::-1])
        shapes.append(f'<polygon class="{css}" points="{upper} {lower}"/>')
    return f'<g class="{css}-group" aria-label="{escape(label)}">{"".join(shapes)}</g>'


def _line(chart: Chart, arrays: dict[str, np.ndarray], css: str) -> str:
    if arrays["t"].size == 0:
        return ""
    coords = _coords(_xs(chart, arrays["t"]), _ys(chart, arrays["value"]))
    return f'<polyline class="{css}" points="{coords}"/>'


def mark_title(p: dict[str, Any]) -> str:
    return (
        f"{rfc3339(parse_instant(p['timestamp']))}: value {number(p['value'], 6)}, "  # type: ignore[arg-type]
        f"score {number(p.get('score'), 6)}, expected {number(p.get('expected'))} "
        f"[{number(p.get('lower'))}, {number(p.get('upper'))}]. {p.get('explanation') or ''}"
    ).strip()


def _axes(chart: Chart, since: datetime, until: datetime, tz_name: str) -> str:
    tz = zone(tz_name)
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" '
        f'x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>',
    ]
    for i in range(5):
        v = chart.v0 + (chart.v1 - chart.v0) * i / 4
        y = chart.y(v)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4}" text-anchor="end">'
            f"{escape(number(v))}</text>"
        )
    span = until.timestamp() - since.timestamp()
    for i in range(6):
        t = since.timestamp() + span * i / 5
        x = chart.x(t)
        local = datetime.fromtimestamp(t, tz)
        label = local.strftime("%d %b %H:%M") if span > 86400 else local.strftime("%H:%M")
        parts.append(
            f'<text class="tick" x="{x}" y="{HEIGHT - BOTTOM + 18}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return "".join(parts)


def detector_svg(
    points: list[dict[str, Any]],
    *,
    since: datetime,
    until: datetime,
    title: str,
    tz: str = "UTC",
    overlay: list[dict[str, Any]] | None = None,
) -> str:
    """The chart: band, series, anomaly marks, and a backtest overlay if given."""
    overlay = overlay or []
    v0, v1 = _domain(points, overlay)
    chart = Chart(since.timestamp(), until.timestamp(), v0, v1)
    marks = []
    for p in points:
        if not p.get("is_anomaly"):
            continue
        x, y = chart.x(_stamp(p)), chart.y(float(p["value"]))
        marks.append(
            f'<circle class="mark {escape(p.get("status") or "open")}" tabindex="0" r="6" '
            f'cx="{x}" cy="{y}" data-id="{p["id"]}" data-ts="{escape(str(p["timestamp"]))}" '
            f'data-value="{p["value"]}" data-score="{p.get("score")}">'
            f"<title>{escape(mark_title(p))}</title></circle>"
        )
    would = []
    for p in overlay:
        if p.get("is_anomaly"):
            x, y = chart.x(_stamp(p)), chart.y(float(p["value"]))
            would.append(
                f'<rect class="would" x="{x - 5}" y="{y - 5}" width="10" height="10" '
                f'transform="rotate(45 {x} {y})" data-ts="{escape(str(p["timestamp"]))}">'
                f"<title>backtest: would be an anomaly at {escape(str(p['timestamp']))} "
                f"(score {escape(number(p.get('score'), 6))})</title></rect>"
            )
    arrays = _arrays(points)
    body = [
        _axes(chart, since, until, tz),
        _band(chart, arrays, "band", "expected band"),
        _band(chart, _arrays(overlay), "band-proposed", "proposed band (backtest)")
        if overlay
        else "",
        _line(chart, arrays, "series"),
        f'<g class="marks" aria-label="anomalies">{"".join(marks)}</g>',
        f'<g class="would-marks" aria-label="backtest anomalies">{"".join(would)}</g>',
    ]
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-label="{escape(title)}" '
        f'data-t0="{rfc3339(since)}" data-t1="{rfc3339(until)}" data-v0="{v0}" data-v1="{v1}" '
        f'data-left="{LEFT}" data-right="{WIDTH - RIGHT}" data-top="{TOP}" '
        f'data-bottom="{HEIGHT - BOTTOM}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )
