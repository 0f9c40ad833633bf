"""What every page shares: the signed-in session, the API client, CSRF-checked
forms, rendering, and the redirects and error pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console.client import Api
from services.console.config import ConsoleSettings
from services.console.sessions import COOKIE, Keys, Session, SessionStore

CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form."""


class Forbidden(Exception):
    """A form without a valid CSRF token."""


def state(request: Request) -> Any:
    return request.app.state


def now_of(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def console_settings(request: Request) -> ConsoleSettings:
    return request.app.state.console  # type: ignore[no-any-return]


def keys_of(request: Request) -> Keys:
    return request.app.state.keys  # type: ignore[no-any-return]


async def current_session(request: Request) -> Session:
    store: SessionStore = request.app.state.sessions
    session = await store.load(request.cookies.get(COOKIE), now_of(request))
    if session is None:
        raise SignInRequired()
    request.state.session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


async def api_of(request: Request, session: SessionDep) -> Api:
    app = request.app.state
    return Api(app.anomaly_http, app.oncall_http, session)


ApiDep = Annotated[Api, Depends(api_of)]


async def checked_form(request: Request, session: SessionDep) -> dict[str, str]:
    """The posted form, after its CSRF token is checked against the session (403)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not keys_of(request).csrf_ok(f"session:{session.sid}", values.get(CSRF_FIELD)):
        raise Forbidden()
    return values


FormDep = Annotated[dict[str, str], Depends(checked_form)]


def url(request: Request, path: str, **params: Any) -> str:
    base = console_settings(request).base
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{base}{path}" + (f"?{query}" if query else "")


def redirect(request: Request, path: str, **params: Any) -> RedirectResponse:
    return RedirectResponse(url(request, path, **params), status_code=303)


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    session: Session | None = getattr(request.state, "session", None)
    csrf = keys_of(request).csrf(f"session:{session.sid}") if session else None
    base = console_settings(request).base
    return templates.TemplateResponse(
        request,
        template,
        {
            "base": base,
            "session": session,
            "csrf": csrf,
            "csrf_field": CSRF_FIELD,
            "notice": request.query_params.get("notice"),
            "error": request.query_params.get("error"),
            **context,
        },
        status_code=status_code,
    )


def page_headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.headers.get("content-type", "").startswith("text/html"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
