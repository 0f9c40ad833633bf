"""Link tokens (pure): minted for one notification's person, alert and action; checked.

A token is ``<payload>.<signature>``, both unpadded base64url: the payload is compact
JSON ``{"a": account, "al": alert id, "p": person id, "x": action, "n": notification
id, "e": expiry (unix seconds)}``, the signature the HMAC-SHA256 of the payload's text
under the links key (``keys.derived_key(settings, "links")``), compared in constant
time. Nothing of a token is stored: a link that acted is remembered by its id
(``<notification id>:<action>``) in ``np_oncall.link_uses``. Minting is deterministic
(the expiry counts from the notification's creation), so every attempt of one
notification carries the same links and the same body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

Action = Literal["ack", "resolve", "escalate"]
ACTIONS: tuple[Action, ...] = ("ack", "resolve", "escalate")
TTL = timedelta(hours=24)
MAX_TOKEN = 1024


@dataclass(frozen=True, slots=True)
class Link:
    account: str
    alert_id: str
    person_id: str
    action: Action
    notification_id: str
    expires: datetime

    @property
    def id(self) -> str:
        """What `np_oncall.link_uses` remembers once the link acted."""
        return f"{self.notification_id}:{self.action}"

    def expired(self, now: datetime) -> bool:
        return now >= self.expires


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def mint(key: bytes, link: Link) -> str:
    body = {
        "a": link.account,
        "al": link.alert_id,
        "p": link.person_id,
        "x": link.action,
        "n": link.notification_id,
        "e": int(link.expires.timestamp()),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_sign(key, payload)}"


def read(key: bytes, token: str) -> Link | None:
    """The link a token stands for, or None when it is not one this key signed
    (tampered, truncated, another key's). Expiry is the caller's to judge."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        return None
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature.encode(), _sign(key, payload).encode()):
        return None
    try:
        body = json.loads(_unb64(payload))
        action = body["x"]
        if action not in ACTIONS:
            return None
        return Link(
            account=str(body["a"]),
            alert_id=str(body["al"]),
            person_id=str(body["p"]),
            action=cast(Action, action),
            notification_id=str(body["n"]),
            expires=datetime.fromtimestamp(int(body["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError):
        return None


def for_notification(
    key: bytes,
    base_url: str,
    *,
    account: str,
    alert_id: str,
    person_id: str,
    notification_id: str,
    created_at: datetime,
) -> dict[str, str]:
    """The ``{"ack", "resolve", "escalate"}`` URLs of one notification."""
    expires = created_at + TTL
    return {
        action: f"{base_url}/api/v1/links/"
        + mint(key, Link(account, alert_id, person_id, action, notification_id, expires))
        for action in ACTIONS
    }


@dataclass(frozen=True, slots=True)
class Minter:
    """What the worker mints links with: the links key and the public address."""

    key: bytes = field(repr=False)
    base_url: str

    def links(
        self,
        *,
        account: str,
        alert_id: str,
        person_id: str,
        notification_id: str,
        created_at: datetime,
    ) -> dict[str, str]:
        return for_notification(
            self.key,
            self.base_url,
            account=account,
            alert_id=alert_id,
            person_id=person_id,
            notification_id=notification_id,
            created_at=created_at,
        )
