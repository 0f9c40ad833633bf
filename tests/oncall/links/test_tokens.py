"""Link tokens (pure): bound to account, alert, person, action and notification; any
change to the payload or the signature, or another key, reads as no link."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.oncall.links import tokens
from services.oncall.links.tokens import Link

KEY = b"k" * 32
CREATED = datetime(2026, 11, 23, 8, tzinfo=UTC)


def _link(**changes: object) -> Link:
    values: dict[str, object] = {
        "account": "acme",
        "alert_id": "11111111-1111-1111-1111-111111111111",
        "person_id": "ada",
        "action": "ack",
        "notification_id": "22222222-2222-2222-2222-222222222222",
        "expires": CREATED + tokens.TTL,
    }
    values.update(changes)
    return Link(**values)  # type: ignore[arg-type]


def test_a_minted_token_reads_back_and_is_deterministic() -> None:
    link = _link()
    token = tokens.mint(KEY, link)
    assert tokens.read(KEY, token) == link
    assert tokens.mint(KEY, link) == token  # every attempt of a notification: same body
    assert link.id == "22222222-2222-2222-2222-222222222222:ack"


@pytest.mark.parametrize(
    "field, value",
    [
        ("al", "33333333-3333-3333-3333-333333333333"),
        ("p", "bob"),
        ("a", "other"),
        ("x", "resolve"),
        ("e", 4102444800),
    ],
)
def test_a_changed_payload_is_no_link(field: str, value: object) -> None:
    payload, signature = tokens.mint(KEY, _link()).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body[field] = value
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    assert tokens.read(KEY, f"{forged}.{signature}") is None


def test_another_key_a_changed_signature_or_garbage_is_no_link() -> None:
    token = tokens.mint(KEY, _link())
    assert tokens.read(b"x" * 32, token) is None
    assert tokens.read(KEY, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    for junk in ("", ".", "a.b.c", "x" * 5000, token.replace(".", "")):
        assert tokens.read(KEY, junk) is None


def test_expiry_and_the_urls_of_a_notification() -> None:
    link = _link()
    assert not link.expired(CREATED + tokens.TTL - timedelta(seconds=1))
    assert link.expired(CREATED + tokens.TTL)
    urls = tokens.for_notification(
        KEY,
        "https://oncall.example.com",
        account="acme",
        alert_id=link.alert_id,
        person_id="ada",
        notification_id=link.notification_id,
        created_at=CREATED,
    )
    assert list(urls) == ["ack", "resolve", "escalate"]
    for action, url in urls.items():
        prefix = "https://oncall.example.com/api/v1/links/"
        assert url.startswith(prefix)
        assert tokens.read(KEY, url[len(prefix) :]) == _link(action=action)
