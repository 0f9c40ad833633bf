"""Webhook signing per the Standard Webhooks specification (standardwebhooks.com).

Every webhook and Slack contact method has its own secret, ``whsec_`` + the base64 of
32 random bytes, shown once when the method is created (or its secret rotated). A
request carries ``webhook-id`` (the same on every attempt of one notification),
``webhook-timestamp`` (seconds since the epoch, when the attempt was made) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``),
computed by the ``standardwebhooks`` package. ``X-Signature`` (``sha256=<hex HMAC of
the body>``) stays for receivers written before: keyed with ``WEBHOOK_SIGNING_SECRET``
when the operator set one, else with the method's own key.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX) + "==")


def message_id(notification_id: str) -> str:
    """``webhook-id``: one per notification, repeated by every attempt (receivers
    deduplicate on it, as on ``Idempotency-Key``)."""
    return "msg_" + notification_id.replace("-", "")


def headers(secret: str, *, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    stamp = at.astimezone(UTC).replace(microsecond=0)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }
