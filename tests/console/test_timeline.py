"""PURE: day rows of a schedule's final shifts, and the chart's geometry."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.console import charts, timeline


def test_rows_follow_real_durations_across_dst() -> None:
    # Europe/Berlin: 2027-03-28 has 23 hours, 2026-10-25 has 25
    shifts = [
        {"start": "2027-03-27T23:00:00Z", "end": "2027-03-28T06:00:00Z", "person_id": "ada",
         "source": "layer"},
        {"start": "2027-03-28T06:00:00Z", "end": "2027-03-29T22:00:00Z", "person_id": None,
         "source": None},
    ]  # fmt: skip
    rows = timeline.rows(shifts, date(2027, 3, 28), 2, "Europe/Berlin")
    assert [r.hours for r in rows] == [23, 24]
    sunday = rows[0]
    assert sunday.start == datetime(2027, 3, 27, 23, tzinfo=UTC)
    ada, gap = sunday.segments
    # 08:00 CEST is 7 real hours after midnight CET
    assert ada.left == 0 and abs(ada.width * 23 / 100 - 7) < 1e-3
    assert gap.person_id is None and gap.colour == -1
    assert dict((label, left) for left, label in sunday.ticks)["06"] == round(5 / 23 * 100, 3)
    autumn = timeline.rows([], date(2026, 10, 25), 1, "Europe/Berlin")
    assert autumn[0].hours == 25


def test_chart_maps_time_and_value_linearly() -> None:
    since, until = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    points = [
        {"id": 1, "timestamp": "2026-11-23T00:00:00Z", "value": 0.0, "lower": -1, "upper": 1},
        {"id": 2, "timestamp": "2026-11-23T12:00:00Z", "value": 10.0, "lower": -1, "upper": 1,
         "is_anomaly": True, "score": 0.999, "explanation": "ten is high", "status": "open"},
        {"id": 3, "timestamp": "2026-11-24T00:00:00Z", "value": 0.0, "lower": -1, "upper": 1},
    ]  # fmt: skip
    svg = charts.detector_svg(points, since=since, until=until, title="t")
    chart = charts.Chart(since.timestamp(), until.timestamp(), *charts._domain(points, []))
    assert f'cx="{chart.x(since.timestamp() + 43200)}"' in svg
    assert f'cy="{chart.y(10.0)}"' in svg
    assert "<title>2026-11-23T12:00:00Z: value 10, score 0.999" in svg and "ten is high" in svg
    assert svg.count("<polygon") == 1 and "<polyline" in svg
