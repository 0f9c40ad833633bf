"""The console in a real headless Chromium, over the real services and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.console.formatting import parse_instant, rfc3339
from tests.console.pages import shot, sign_in
from tests.console.seed import DST_START, Seeded, seed
from tests.console.stack import Stack


@pytest.fixture(scope="module")
async def seeded(site: Stack) -> Seeded:
    return await seed(site)


@pytest.fixture(scope="module")
async def page(browser: Any, site: Stack, seeded: Seeded) -> Any:
    page = await sign_in(browser, site.console, viewport={"width": 1440, "height": 900})
    yield page
    await page.context.close()


async def test_overview(page: Any, site: Stack, seeded: Seeded, shots: Path) -> None:
    await page.goto(site.console + "/")
    assert await page.locator("#detectors-table a", has_text="API p95 latency").count() == 1
    assert await page.locator("#alerts-table a").count() >= 1
    assert "Ada" in await page.locator("#oncall-table").inner_text() or "Bob" in (
        await page.locator("#oncall-table").inner_text()
    )
    await shot(page, shots, "overview")


async def _mark_geometry(page: Any, ts: str) -> dict[str, Any]:
    return await page.evaluate(
        """(ts) => {
          const svg = document.querySelector('svg.chart');
          const mark = [...svg.querySelectorAll('circle.mark')].find(m => m.dataset.ts === ts);
          if (!mark) return null;
          const box = svg.getBoundingClientRect(), m = mark.getBoundingClientRect();
          const line = svg.querySelector('polyline.series').getAttribute('points');
          return {svg: {...svg.dataset}, cx: +mark.getAttribute('cx'),
                  cy: +mark.getAttribute('cy'), value: +mark.dataset.value,
                  title: mark.querySelector('title').textContent,
                  screen: {x: (m.left + m.right) / 2 - box.left,
                           y: (m.top + m.bottom) / 2 - box.top,
                           width: box.width, height: box.height},
                  band: svg.querySelectorAll('polygon.band').length,
                  series: line.split(' ').length};
        }""",
        ts,
    )


async def test_detector_chart_marks_the_injected_anomaly(
    page: Any, site: Stack, seeded: Seeded, shots: Path
) -> None:
    await page.goto(f"{site.console}/detectors/{seeded.detector}")
    anomaly = seeded.anomaly
    ts = rfc3339(parse_instant(anomaly["timestamp"]))  # type: ignore[arg-type]
    # the points route answers timestamps as the service writes them
    found = await page.evaluate(
        "() => [...document.querySelectorAll('svg.chart circle.mark')].map(m => m.dataset.ts)"
    )
    match = next(t for t in found if parse_instant(t) == parse_instant(ts))
    g = await _mark_geometry(page, match)
    assert g is not None and g["band"] >= 1 and g["series"] > 900
    svg = g["svg"]
    t0, t1 = parse_instant(svg["t0"]), parse_instant(svg["t1"])
    assert t0 is not None and t1 is not None
    at = parse_instant(ts)
    assert at is not None
    left, right = float(svg["left"]), float(svg["right"])
    top, bottom = float(svg["top"]), float(svg["bottom"])
    v0, v1 = float(svg["v0"]), float(svg["v1"])
    x = left + (at - t0) / (t1 - t0) * (right - left)
    y = top + (v1 - anomaly["value"]) / (v1 - v0) * (bottom - top)
    assert abs(g["cx"] - x) < 0.05 and abs(g["cy"] - y) < 0.05
    assert g["value"] == anomaly["value"]
    # on screen: the same place, scaled to the drawn size of the chart
    scale = g["screen"]["width"] / 960
    assert abs(g["screen"]["x"] - x * scale) < 2 and abs(g["screen"]["y"] - y * scale) < 2
    assert (
        "value 950" in g["title"] and "score" in g["title"] and anomaly["explanation"] in g["title"]
    )
    # focusing the mark by keyboard shows its title in words
    await page.focus(f"svg.chart circle.mark[data-ts='{match}']")
    assert "value 950" in await page.locator("#mark-info").inner_text()
    await shot(page, shots, "detector")


async def test_each_series_of_a_multi_series_detector(page: Any, site: Stack) -> None:
    now = site.clock()
    await site.call("anomaly", "POST", "/api/v1/detectors", json={
        "id": "per-host", "name": "Per host", "algorithm": "mad",
    })  # fmt: skip
    points = [
        {"detector_id": "per-host", "value": level + (i % 3), "labels": {"host": host},
         "timestamp": rfc3339(now - timedelta(minutes=120 - i))}
        for host, level in (("a", 10.0), ("b", 500.0))
        for i in range(120)
    ]  # fmt: skip
    await site.call("anomaly", "POST", "/api/v1/ingest", json={"points": points})
    await page.goto(f"{site.console}/detectors/per-host")
    links = page.locator("#series-list a")
    assert await links.count() == 2
    assert "host=a" in await page.locator("figcaption").inner_text()
    await links.filter(has_text="host=b").click()
    await page.wait_for_selector("figcaption:has-text('host=b')")
    v0 = float(await page.locator("svg.chart").get_attribute("data-v0") or 0)
    assert v0 > 400  # the chart's scale is host b's alone


async def test_false_positive_changes_the_rate(page: Any, site: Stack, seeded: Seeded) -> None:
    await page.goto(f"{site.console}/detectors/{seeded.detector}")
    assert (await page.locator("#fp-rate").inner_text()).strip() == "—"
    row = page.locator(f"#anomaly-{seeded.anomaly['id']}")
    await row.locator("button[value=false_positive]").click()
    await page.wait_for_selector("p.notice")
    assert (await page.locator("#fp-rate").inner_text()).strip() == "100.0%"
    assert (await row.locator(".review-status").inner_text()).strip() == "false_positive"
    stats = await site.call(
        "anomaly", "GET", "/api/v1/stats", params={"detector_id": "api-latency"}
    )
    assert stats["detectors"][0]["false_positive_rate"] == 1.0
    # confirming another anomaly halves it
    other = page.locator("#anomalies-table tbody tr").filter(has_not_text="false_positive").first
    await other.locator("button[value=confirmed]").click()
    await page.wait_for_selector("p.notice")
    assert (await page.locator("#fp-rate").inner_text()).strip() == "50.0%"


async def test_backtest_is_drawn_over_the_chart(page: Any, site: Stack, seeded: Seeded) -> None:
    await page.goto(f"{site.console}/detectors/{seeded.detector}")
    await page.fill("#score", "0.9999")
    await page.click("#backtest-button")
    await page.wait_for_selector("#backtest-summary")
    assert await page.locator("svg.chart polygon.band-proposed").count() >= 1
    assert "Nothing was stored" in await page.locator("#backtest-summary").inner_text()
    detector = await site.call("anomaly", "GET", "/api/v1/detectors/api-latency")
    assert detector["thresholds"]["score"] == 0.99  # a backtest saves nothing


async def test_alert_ack_shows_in_the_timeline(
    page: Any, site: Stack, seeded: Seeded, shots: Path
) -> None:
    await page.goto(f"{site.console}/alerts")
    await page.click(f"a[href$='/alerts/{seeded.alert_id}']")
    await page.wait_for_selector("#ack-button")
    kinds = await page.locator("#timeline-list li").evaluate_all(
        "ls => ls.map(l => l.dataset.kind)"
    )
    assert "triggered" in kinds and "acknowledged" not in kinds
    await page.click("#ack-button")
    await page.wait_for_selector("#timeline-list li[data-kind=acknowledged]")
    assert (await page.locator("#alert-status").inner_text()).strip() == "acknowledged"
    alert = await site.call("oncall", "GET", f"/api/v1/alerts/{seeded.alert_id}")
    assert alert["status"] == "acknowledged"
    await shot(page, shots, "alert")


async def _segments(page: Any) -> list[dict[str, str]]:
    return await page.locator("#timeline .seg").evaluate_all(  # type: ignore[no-any-return]
        "ss => ss.map(s => ({start: s.dataset.start, end: s.dataset.end, "
        "person: s.dataset.person, source: s.dataset.source}))"
    )


def _on_page(segments: list[dict[str, str]], at: datetime) -> str | None:
    for s in segments:
        start, end = parse_instant(s["start"]), parse_instant(s["end"])
        assert start is not None and end is not None
        if start <= at < end:
            return s["person"] or None
    raise AssertionError(f"no segment covers {at}")


async def test_schedule_timeline_across_dst_matches_rest(
    page: Any, site: Stack, seeded: Seeded, shots: Path
) -> None:
    await page.goto(
        f"{site.console}/schedules/{seeded.schedule}?start={DST_START}&tz=America/New_York"
    )
    rows = page.locator("#timeline .tl-row")
    assert await rows.count() == 14
    hours = await rows.evaluate_all(
        "rs => rs.map(r => (Date.parse(r.dataset.end) - Date.parse(r.dataset.start)) / 3600000)"
    )
    assert 23 in hours  # Sunday 28 March 2027 in Europe/Berlin
    segments = await _segments(page)
    start = datetime(2027, 3, 26, tzinfo=UTC)
    for hour in range(0, 4 * 24, 1):
        at = start + timedelta(hours=hour, minutes=30)
        rest = await site.call(
            "oncall",
            "GET",
            f"/api/v1/schedules/{seeded.schedule}/oncall",
            params={"at": rfc3339(at)},
        )
        expected = rest["person"]["id"] if rest["person"] else None
        assert _on_page(segments, at) == expected, at
    # the shift table gives both zones
    head = await page.locator("#shifts-table thead").inner_text()
    assert "Europe/Berlin" in head and "America/New_York" in head
    await shot(page, shots, "schedule-dst")


async def test_override_created_in_the_page_changes_the_timeline(
    page: Any, site: Stack, seeded: Seeded
) -> None:
    await page.goto(f"{site.console}/schedules/{seeded.schedule}?start={DST_START}")
    at = datetime(2027, 3, 30, 11, 0, tzinfo=UTC)  # 13:00 in Berlin (CEST)
    before = _on_page(await _segments(page), at)
    assert before in ("ada", "bob")
    await page.select_option("#person_id", "cy")
    await page.fill("#ov-start", "2027-03-30T12:00")
    await page.fill("#ov-end", "2027-03-30T15:00")
    await page.fill("#reason", "swap")
    await page.click("#override-form button[type=submit]")
    await page.wait_for_selector("p.notice")
    segments = await _segments(page)
    assert _on_page(segments, at) == "cy"
    override = [s for s in segments if s["source"] == "override"]
    assert override and override[0]["start"] == "2027-03-30T10:00:00Z"
    assert override[0]["end"] == "2027-03-30T13:00:00Z"
    rest = await site.call(
        "oncall", "GET", f"/api/v1/schedules/{seeded.schedule}/oncall", params={"at": rfc3339(at)}
    )
    assert rest["person"]["id"] == "cy"
    # and deleting it from the page restores the rotation
    await page.locator("#overrides-list button").first.click()
    await page.wait_for_selector("p.notice")
    assert _on_page(await _segments(page), at) == before


async def test_calendar_feed_link_created_and_revoked_in_the_page(
    page: Any, site: Stack, seeded: Seeded
) -> None:
    await page.goto(f"{site.console}/schedules/{seeded.schedule}")
    await page.click("#feed-create")
    await page.wait_for_selector("#feed-url")
    url = await page.locator("#feed-url").get_attribute("href")
    assert url and "/api/v1/feeds/" in url
    feed = await site.http.get(url)  # no bearer: the link is its own credential
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")
    await page.click("#feed-revoke")
    await page.wait_for_selector("#feed-create")
    assert (await site.http.get(url)).status_code == 404


async def test_people_and_policies_read_and_edit(page: Any, site: Stack, seeded: Seeded) -> None:
    await page.goto(f"{site.console}/people")
    await page.click("#people-table a:has-text('Ada')")
    await page.fill("#email", "ada@ops.example.com")
    await page.click("#person-form button[type=submit]")
    await page.wait_for_selector("p.notice")
    person = await site.call("oncall", "GET", "/api/v1/people/ada")
    assert person["email"] == "ada@ops.example.com"
    await page.goto(f"{site.console}/policies/backend")
    assert "schedule:primary" in await page.locator("#steps").input_value()
    await page.fill("#steps", "10: schedule:primary\n20: person:bob")
    await page.click("#policy-form button[type=submit]")
    await page.wait_for_selector("p.notice")
    policy = await site.call("oncall", "GET", "/api/v1/policies/backend")
    assert [s["delay_minutes"] for s in policy["steps"]] == [10, 20]


async def test_contact_methods_added_edited_and_removed_in_the_page(
    page: Any, site: Stack, seeded: Seeded
) -> None:
    await site.call("oncall", "POST", "/api/v1/people", json={"id": "dee", "name": "Dee"})
    await page.goto(f"{site.console}/people/dee")
    await page.select_option("#new-type", "webhook")
    await page.fill("#new-destination", "http://127.0.0.1:9/dee-hook")
    await page.fill("#new-delay", "3")
    await page.click("#contact-add button[type=submit]")
    await page.wait_for_selector("#signing-secret")
    secret = await page.locator("#signing-secret-value").inner_text()
    assert secret.startswith("whsec_")
    person = await site.call("oncall", "GET", "/api/v1/people/dee")
    [method] = person["contact_methods"]
    assert method["type"] == "webhook" and method["url"] == "http://127.0.0.1:9/dee-hook"
    assert method["delay_minutes"] == 3 and method["signing_secret"] is None
    # shown once: the page read again has no secret
    await page.goto(f"{site.console}/people/dee")
    assert await page.locator("#signing-secret").count() == 0
    assert secret not in await page.content()
    # edit the delay; a blank URL keeps the current one (and its secret)
    fid = f"cm-{method['id']}"
    await page.fill(f"[id='{fid}-delay']", "12")
    await page.click(f"[id='{fid}-form'] button[type=submit]")
    await page.wait_for_selector("p.notice")
    person = await site.call("oncall", "GET", "/api/v1/people/dee")
    [edited] = person["contact_methods"]
    assert edited["id"] == method["id"] and edited["delay_minutes"] == 12
    assert edited["url"] == "http://127.0.0.1:9/dee-hook"
    # rotate: a new secret, shown once
    await page.click(f"[id='{fid}-rotate'] button[type=submit]")
    await page.wait_for_selector("#signing-secret")
    rotated = await page.locator("#signing-secret-value").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret
    await page.goto(f"{site.console}/people/dee")
    assert rotated not in await page.content()
    # a refused destination: the API's message beside the form, nothing saved
    await page.fill("#new-destination", "http://169.254.169.254/latest")
    await page.click("#contact-add button[type=submit]")
    await page.wait_for_selector("#new-error")
    message = await page.locator("#new-error").inner_text()
    assert "contact_methods" in message and "url" in message, message
    assert await page.locator("#new-destination").input_value() == "http://169.254.169.254/latest"
    person = await site.call("oncall", "GET", "/api/v1/people/dee")
    assert [m["id"] for m in person["contact_methods"]] == [method["id"]]
    # remove it
    await page.click(f"[id='{fid}-remove'] button[type=submit]")
    await page.wait_for_selector("p.notice")
    person = await site.call("oncall", "GET", "/api/v1/people/dee")
    assert person["contact_methods"] == []


@pytest.mark.parametrize("width", [390, 1440])
async def test_pages_read_at_phone_and_desktop_widths(
    browser: Any, site: Stack, seeded: Seeded, shots: Path, width: int
) -> None:
    page = await sign_in(browser, site.console, viewport={"width": width, "height": 900})
    try:
        for name, path in (
            ("overview", "/"),
            ("detector", f"/detectors/{seeded.detector}"),
            ("alerts", "/alerts"),
            ("schedule", f"/schedules/{seeded.schedule}"),
            ("people", "/people"),
        ):
            await page.goto(site.console + path)
            # nothing wider than the window but what scrolls in its own box
            overflow = await page.evaluate("() => document.documentElement.scrollWidth")
            assert overflow <= width + 1, (name, overflow)
            # every form control has a label
            unlabeled = await page.evaluate(
                """() => [...document.querySelectorAll(
                        'input:not([type=hidden]), select, textarea')]
                      .filter(c => !(c.labels && c.labels.length) && !c.closest('label')
                                   && !c.getAttribute('aria-label')).map(c => c.name)"""
            )
            assert unlabeled == [], (name, unlabeled)
            if width == 390:
                await shot(page, shots, f"{name}-390", full_page=True)
        # keyboard: Tab reaches the first navigation link after the skip link
        await page.goto(site.console + "/")
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.className") == "skip"
    finally:
        await page.context.close()
