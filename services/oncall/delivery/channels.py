"""Delivery channels: one `Channel` protocol, three implementations.

A channel sends one message and classifies the outcome; it never touches the
database. `sent` ends the notification, `retry` schedules another attempt
(with backoff), `permanent` gives up at once (a 4xx from a webhook, a refused
address, a destination that is not allowed). What an HTTP answer means, and
`Retry-After`, are the shared outbox rules (`services.common.outbox`), the
same as nself-anomaly's page sender follows.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal, Protocol

import aiosmtplib
import httpcore
import httpx

from services import __version__
from services.common.destinations import DestinationPolicy, Refused
from services.common.outbox import MAX_RETRY_AFTER_SECONDS as MAX_RETRY_AFTER_SECONDS
from services.common.outbox import Outcome, classify_status, parse_retry_after
from services.oncall.delivery import signing
from services.oncall.delivery.http import Answer, InvalidURL

# `cancelled` and `lost`: the attempt was not made (the alert was closed, or the
# lease went to another worker, when checked just before the send); the row is
# settled already and there is nothing to record
Settled = Literal["cancelled", "lost"]
USER_AGENT = f"nsentry-oncall/{__version__}"


@dataclass(frozen=True, slots=True)
class Message:
    """What to deliver: the stored payload, where, and the key every attempt repeats."""

    notification_id: str
    idempotency_key: str
    channel: str
    destination: str
    payload: dict[str, Any]
    attempt: int
    # the contact method's Standard Webhooks secret (webhook and Slack; None: removed)
    signing_secret: str | None = field(default=None, repr=False)
    # the signed ack / resolve / escalate URLs (None when the service has no link key)
    links: Mapping[str, str] | None = field(default=None, repr=False)

    def with_links(self) -> dict[str, Any]:
        """The payload as sent: the stored one plus `links`."""
        return {**self.payload, "links": dict(self.links)} if self.links else self.payload


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome | Settled
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


class Channel(Protocol):
    """A way to reach a person."""

    name: str

    async def send(self, message: Message) -> Result:
        """Deliver once; classify the outcome. Must not raise for delivery failures."""
        ...


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
def subject(payload: dict[str, Any]) -> str:
    alert = payload.get("alert", {})
    return f"[{str(alert.get('severity', 'alert')).upper()}] {alert.get('summary', '')}"[:250]


LINK_LABELS = {"ack": "Acknowledge", "resolve": "Resolve", "escalate": "Escalate"}


def text(payload: dict[str, Any], links: Mapping[str, str] | None = None) -> str:
    alert = payload.get("alert", {})
    escalation = payload.get("escalation", {})
    details = alert.get("details")
    lines = [
        alert.get("summary", ""),
        "",
        f"Severity: {alert.get('severity')}",
        f"Source:   {alert.get('source') or '-'}",
        f"Alert:    {alert.get('id')}",
        f"Policy:   {alert.get('policy_id')} "
        f"(step {escalation.get('step', 0) + 1}, loop {escalation.get('loop', 0) + 1})",
        f"Since:    {alert.get('created_at')}",
    ]
    if details is not None:
        shown = details if isinstance(details, str) else json.dumps(details, indent=2)
        lines += ["", "Details:", shown[:4000]]
    if links:
        lines += [""] + [f"{LINK_LABELS[k]}: {url}" for k, url in links.items()]
        lines += ["", "Each link opens a page with a button; it acts once."]
    else:
        lines += ["", f"Acknowledge: POST /api/v1/alerts/{alert.get('id')}/ack"]
    return "\n".join(lines)


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Signature` value: `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def classify(response: httpx.Response | Answer, *, now: Callable[[], datetime] = _utcnow) -> Result:
    """An HTTP answer as an attempt's outcome (`services.common.outbox.classify_status`);
    a retry carries the `Retry-After` it asked for (an HTTP-date counts from the
    answer's `Date`, else from `now()`)."""
    code = response.status_code
    outcome = classify_status(code)
    if outcome == "sent":
        return Result("sent", code)
    reason = f"HTTP {code}"
    if outcome == "retry":
        headers = response.headers
        wait = parse_retry_after(headers.get("retry-after"), now=now(), date=headers.get("date"))
        return Result("retry", code, reason, wait)
    if 300 <= code < 400:
        return Result("permanent", code, f"{reason}: redirects are not followed")
    return Result("permanent", code, reason)


# ---------------------------------------------------------------------------
# Webhook and Slack
# ---------------------------------------------------------------------------
# failures worth another attempt (timeouts are told apart; an unusable URL is not one)
_TRANSIENT = (httpcore.NetworkError, httpcore.ProtocolError, OSError)


class WebhookClient(Protocol):
    """What a webhook channel sends with: the worker's :class:`~.http.Connections`."""

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        addresses: Sequence[str] | None = None,
    ) -> Answer:
        """POST `body` to `url`, connecting only to `addresses` (the checked ones);
        raises httpcore's errors, or InvalidURL."""
        ...


class WebhookChannel:
    """POST the JSON payload, signed, with `Idempotency-Key`.

    `client` is the worker's :class:`~.http.Connections` (keep-alive connections per
    origin); redirects are not followed and its errors are httpcore's. The
    destination is checked (its name resolved once) before every send, and the
    send connects only to the addresses that check judged.
    """

    name = "webhook"

    def __init__(
        self,
        client: WebhookClient,
        *,
        destinations: DestinationPolicy,
        signing_secret: bytes | None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.client = client
        self.destinations = destinations
        self.signing_secret = signing_secret
        self.clock = clock

    def body(self, message: Message) -> bytes:
        return canonical_json(message.with_links())

    async def send(self, message: Message) -> Result:
        try:
            destination = await self.destinations.check(message.destination)
        except Refused as refused:
            return Result("retry" if refused.transient else "permanent", None, refused.reason)
        if not message.signing_secret:  # no webhook leaves unsigned
            return Result("permanent", None, "no signing secret: the contact method was removed")
        body = self.body(message)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": message.idempotency_key,
            "X-Nsentry-Attempt": str(message.attempt),
            **signing.headers(
                message.signing_secret,
                msg_id=signing.message_id(message.notification_id),
                at=self.clock(),
                body=body,
            ),
            "X-Signature": signature(
                self.signing_secret or signing.key_of(message.signing_secret), body
            ),
        }
        try:
            response = await self.client.post(
                destination.url, body, headers, addresses=destination.addresses
            )
        except httpcore.TimeoutException:
            return Result("retry", None, "timed out")
        except (InvalidURL, httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            return Result("permanent", None, f"{exc.__class__.__name__}: {str(exc)[:200]}")
        except _TRANSIENT as exc:
            return Result("retry", None, f"{exc.__class__.__name__}: {str(exc)[:200]}")
        return classify(response, now=self.clock)


class SlackChannel(WebhookChannel):
    """A Slack-compatible incoming webhook: `{"text": ...}` (Mattermost, Rocket.Chat too)."""

    name = "slack"

    def body(self, message: Message) -> bytes:
        payload = message.payload
        alert = payload.get("alert", {})
        severity = str(alert.get("severity", "")).upper()
        lines = [f":rotating_light: *[{severity}]* {alert.get('summary', '')}"]
        details = alert.get("details")
        if details is not None:
            shown = details if isinstance(details, str) else json.dumps(details)
            lines.append(f"```{shown[:1500]}```")
        lines.append(
            f"alert `{alert.get('id')}` · policy `{alert.get('policy_id')}` · "
            f"source {alert.get('source') or '-'}"
        )
        if message.links:
            lines.append(" · ".join(f"<{u}|{LINK_LABELS[k]}>" for k, u in message.links.items()))
        return json.dumps({"text": "\n".join(lines)}).encode()


# ---------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


class EmailChannel:
    """Plain-text email through the operator's SMTP server."""

    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = message.destination
        mail["Subject"] = subject(message.payload)
        mail["Date"] = email.utils.formatdate(localtime=False)
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        mail["Message-ID"] = f"<{digest}@oncall.nsentry>"  # the same on every attempt
        mail["Idempotency-Key"] = message.idempotency_key
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(text(message.payload, message.links))
        return mail

    async def send(self, message: Message) -> Result:
        try:
            mail = self.build(message)
        except (ValueError, TypeError) as exc:
            return Result("permanent", None, f"bad address: {exc}")
        config = self.config
        try:
            await aiosmtplib.send(
                mail,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                start_tls=config.starttls,
                use_tls=False,
                timeout=config.timeout,
                tls_context=ssl.create_default_context() if config.starttls else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            outcome: Outcome = (
                "retry" if codes and all(400 <= c < 500 for c in codes) else "permanent"
            )
            return Result(outcome, codes[0] if codes else None, f"recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            outcome = "retry" if 400 <= exc.code < 500 else "permanent"
            return Result(outcome, exc.code, f"SMTP {exc.code}: {exc.message}"[:300])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Result("retry", None, f"{exc.__class__.__name__}: {str(exc)[:200]}")
        return Result("sent", 250)
