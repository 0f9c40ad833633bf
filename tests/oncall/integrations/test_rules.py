"""The pure parts of integrations: tokens, payload mapping, heartbeat decisions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from services.oncall.integrations import heartbeat, payloads, tokens
from services.oncall.integrations.models import (
    AlertmanagerPayload,
    GenericAlert,
    GrafanaPayload,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_a_minted_token_fits_an_email_local_part_and_only_its_hash_is_kept() -> None:
    minted = tokens.mint()
    assert len(minted.token) == 48 and len(minted.token) <= 64
    assert tokens.PATTERN.fullmatch(minted.token)
    assert minted.selector == tokens.selector_of(minted.token)
    assert minted.token_hash == hashlib.sha256(minted.token.encode()).digest()
    assert minted.token not in minted.token_hash.hex()
    assert tokens.mint().token != minted.token


def test_matches_only_the_token_itself() -> None:
    minted = tokens.mint()
    assert tokens.matches(minted.token, minted.token_hash)
    assert tokens.matches(minted.token.upper(), minted.token_hash)  # mail may upper-case
    other = minted.token[:-1] + ("a" if minted.token[-1] != "a" else "b")
    assert not tokens.matches(other, minted.token_hash)
    assert not tokens.matches(minted.token, None)  # no key with that selector


@pytest.mark.parametrize("bad", ["", "nsk_", "nsk_short", "x" * 48, "nsk_" + "1" * 44])
def test_malformed_tokens_have_no_selector(bad: str) -> None:
    assert tokens.selector_of(bad) is None


def am(status: str = "firing", **alert: object) -> AlertmanagerPayload:
    base = {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": "db1"},
        "annotations": {"summary": "Disk full on db1"},
        "fingerprint": "1a30ba71cca2921f",
    }
    base.update(alert)  # type: ignore[arg-type]
    return AlertmanagerPayload.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="DiskFull"}',
            "status": status,
            "receiver": "nsentry",
            "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": {"alertname": "DiskFull", "severity": "warning"},
            "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "truncatedAlerts": 0,
            "alerts": [base],
        }
    )


def test_alertmanager_alert_maps_by_fingerprint_with_summary_labels_and_severity() -> None:
    [event] = payloads.prometheus(
        am(labels={"alertname": "DiskFull", "severity": "warning"}),
        dedup="fingerprint",
        default_severity="critical",
    )
    assert event.action == "open"
    assert event.dedup == "fp:1a30ba71cca2921f"
    assert event.summary == "Disk full on db1"
    assert event.severity == "warning"
    assert event.details["labels"]["alertname"] == "DiskFull"
    assert event.details["externalURL"] == "http://am:9093"


def test_alertmanager_without_summary_uses_alertname_and_resolved_closes() -> None:
    [event] = payloads.prometheus(
        am("resolved", annotations={}), dedup="fingerprint", default_severity="info"
    )
    assert (event.action, event.summary, event.severity) == ("close", "DiskFull", "info")


def test_alertmanager_group_mode_is_one_event_per_group() -> None:
    payload = am()
    payload.alerts.append(payload.alerts[0].model_copy(update={"fingerprint": "ffff"}))
    [event] = payloads.prometheus(payload, dedup="group", default_severity="critical")
    assert event.dedup == 'group:{}:{alertname="DiskFull"}'
    assert event.severity == "warning"  # the common severity label
    assert len(event.details["alerts"]) == 2
    [closing] = payloads.prometheus(am("resolved"), dedup="group", default_severity="critical")
    assert closing.action == "close" and closing.dedup == event.dedup


def test_grafana_falls_back_to_the_title_and_keeps_its_links() -> None:
    payload = GrafanaPayload.model_validate(
        {
            "receiver": "nsentry",
            "status": "firing",
            "orgId": 1,
            "title": "[FIRING:1] (High memory)",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {},
                    "annotations": {},
                    "fingerprint": "c6eadffa33fcdf37",
                    "values": {"B": 44.2},
                    "dashboardURL": "https://grafana/d/1",
                }
            ],
        }
    )
    [event] = payloads.prometheus(
        payload, dedup="fingerprint", default_severity="error", fallback_title=payload.title
    )
    assert event.summary == "[FIRING:1] (High memory)"
    assert event.details["values"] == {"B": 44.2}
    assert event.details["dashboardURL"] == "https://grafana/d/1"


def test_generic_without_dedup_deduplicates_on_summary_and_details() -> None:
    one = payloads.generic(GenericAlert(summary="db down", details="x"), "critical")
    two = payloads.generic(GenericAlert(summary="db down", details="x"), "critical")
    three = payloads.generic(GenericAlert(summary="db down", details="y"), "critical")
    assert one.dedup == two.dedup != three.dedup
    closing = payloads.generic(GenericAlert(summary="db down", details="x", action="close"), "c")
    assert closing.action == "close" and closing.dedup == one.dedup


def test_generic_refuses_what_asks_for_nothing() -> None:
    with pytest.raises(payloads.Refused) as no_summary:
        payloads.generic(GenericAlert(details="x"), "critical")
    assert no_summary.value.field == "summary"
    with pytest.raises(payloads.Refused) as nothing_to_close:
        payloads.generic(GenericAlert(action="close"), "critical")
    assert nothing_to_close.value.field == "dedup"


def test_a_long_dedup_is_hashed_to_a_bounded_key() -> None:
    event = payloads.generic(GenericAlert(summary="s", dedup="k" * 255), "critical")
    assert event.dedup.startswith("sha256:") and len(event.dedup) < 100


INTERVAL = timedelta(minutes=5)


def test_heartbeat_before_its_first_ping_is_not_watched() -> None:
    decision = heartbeat.decide(
        interval=INTERVAL, last_ping_at=None, alert_open=False, now=T0, ping=False
    )
    assert decision == heartbeat.Decision("none", None)


def test_heartbeat_missed_opens_once_then_the_next_ping_resolves() -> None:
    early = heartbeat.decide(
        interval=INTERVAL, last_ping_at=T0, alert_open=False, now=T0 + INTERVAL / 2, ping=False
    )
    assert early == heartbeat.Decision("none", T0 + INTERVAL)
    missed = heartbeat.decide(
        interval=INTERVAL, last_ping_at=T0, alert_open=False, now=T0 + INTERVAL, ping=False
    )
    assert missed == heartbeat.Decision("open", None)
    already = heartbeat.decide(
        interval=INTERVAL, last_ping_at=T0, alert_open=True, now=T0 + 2 * INTERVAL, ping=False
    )
    assert already.action == "none"
    later = T0 + 3 * INTERVAL
    ping = heartbeat.decide(
        interval=INTERVAL, last_ping_at=T0, alert_open=True, now=later, ping=True
    )
    assert ping == heartbeat.Decision("resolve", later + INTERVAL)
    quiet = heartbeat.decide(
        interval=INTERVAL, last_ping_at=T0, alert_open=False, now=later, ping=True
    )
    assert quiet == heartbeat.Decision("none", later + INTERVAL)
