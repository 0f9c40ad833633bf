"""The small HTML pages a link answers with: no JavaScript, no external resources."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

from services.oncall.links.tokens import Action

VERBS: dict[Action, tuple[str, str]] = {
    "ack": ("Acknowledge", "acknowledged"),
    "resolve": ("Resolve", "resolved"),
    "escalate": ("Escalate", "escalated to the next step"),
}
# the token is in the URL: no referrer carries it elsewhere, no cache keeps the page
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "color:#222}h1{font-size:1.3rem}dl{display:grid;grid-template-columns:auto 1fr;"
    "gap:.3rem 1rem}dt{color:#666}button{font-size:1.1rem;padding:.6rem 1.4rem;cursor:pointer}"
)


def _page(status: int, title: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)} · nSentry on-call</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _alert(alert: Any) -> str:
    return (
        "<dl>"
        f"<dt>Alert</dt><dd>{escape(str(alert['summary']))}</dd>"
        f"<dt>Severity</dt><dd>{escape(str(alert['severity']))}</dd>"
        f"<dt>Status</dt><dd>{escape(str(alert['status']))}</dd>"
        f"<dt>Since</dt><dd>{escape(alert['created_at'].isoformat())}</dd>"
        f"<dt>Id</dt><dd>{escape(str(alert['id']))}</dd>"
        "</dl>"
    )


def confirm(action: Action, alert: Any, person: str) -> HTMLResponse:
    verb = VERBS[action][0]
    # a form without named fields posts an empty body to this same URL
    form = (
        '<form method="post"><p>'
        f'<button type="submit">{escape(verb)}</button></p></form>'
        f"<p>As {escape(person)}. Opening this page changed nothing; the button does, once.</p>"
    )
    return _page(200, f"{verb} this alert?", _alert(alert) + form)


def done(action: Action, alert: Any, person: str) -> HTMLResponse:
    return _page(
        200,
        f"Alert {VERBS[action][1]}",
        _alert(alert) + f"<p>Recorded on the alert's timeline as {escape(person)}.</p>",
    )


def refused(message: str, alert: Any | None = None) -> HTMLResponse:
    """409: the alert's state does not allow the action (the link stays unused)."""
    return _page(
        409, "Nothing to do", (_alert(alert) if alert else "") + f"<p>{escape(message)}</p>"
    )


def gone(reason: str) -> HTMLResponse:
    """410: used or expired."""
    return _page(
        410,
        "This link can no longer be used",
        f"<p>{escape(reason)} Open the alert in nSentry to act on it.</p>",
    )


def not_found() -> HTMLResponse:
    return _page(404, "Unknown link", "<p>This link is not valid.</p>")
