"""Sign-in (a Hasura JWT, or locally the plugin secret and an account) and sign-out."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.console.client import headers_for
from services.console.sessions import COOKIE, PRE_COOKIE, SessionStore, cookie_value
from services.console.web import (
    CSRF_FIELD,
    Forbidden,
    FormDep,
    SessionDep,
    console_settings,
    keys_of,
    now_of,
    render,
    url,
)

router = APIRouter()
PRE_TTL = 3600


def _cookie_path(request: Request) -> str:
    return console_settings(request).base or "/"


@router.get("/signin")
async def signin_form(request: Request, error: str | None = None) -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        title="Sign in",
        pre_csrf=keys_of(request).csrf(f"pre:{pre}"),
        local=console_settings(request).local_sign_in,
        sign_in_error=error,
    )
    response.set_cookie(
        PRE_COOKIE,
        pre,
        max_age=PRE_TTL,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=console_settings(request).cookie_secure,
    )
    return response


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    pre = request.cookies.get(PRE_COOKIE) or ""
    if not pre or not keys_of(request).csrf_ok(f"pre:{pre}", values.get(CSRF_FIELD)):
        raise Forbidden()
    token = values.get("token", "").strip()
    secret = values.get("secret", "")
    account = values.get("account", "").strip() or "primary"
    if token:
        via, bearer = "jwt", token
    elif secret and console_settings(request).local_sign_in:
        via, bearer = "secret", secret
    else:
        return _refused(request, "Give a Hasura JWT, or the plugin secret and an account.")
    client: httpx.AsyncClient = request.app.state.anomaly_http
    answer = await client.get("/auth", headers=headers_for(via, bearer, account))
    if answer.status_code != 200:
        return _refused(request, "Sign-in refused: the credentials were not accepted.")
    account = answer.headers.get("x-hasura-source-account-id") or account
    now = now_of(request)
    settings = console_settings(request)
    expires = now + timedelta(seconds=settings.session_ttl_seconds)
    if via == "jwt":
        expires = min(expires, _jwt_expiry(bearer) or expires)
    store: SessionStore = request.app.state.sessions
    session = await store.create(
        account=account, via=via, bearer=bearer, now=now, expires_at=expires
    )
    response = RedirectResponse(url(request, "/"), status_code=303)
    response.set_cookie(
        COOKIE,
        cookie_value(keys_of(request), sid=session.sid, account=account, expires_at=expires),
        max_age=max(int((expires - now).total_seconds()), 1),
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(PRE_COOKIE, path=_cookie_path(request))
    return response


def _refused(request: Request, message: str) -> Response:
    return RedirectResponse(url(request, "/signin", error=message), status_code=303)


def _jwt_expiry(token: str) -> datetime | None:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


@router.post("/signout")
async def signout(request: Request, session: SessionDep, form: FormDep) -> Response:
    store: SessionStore = request.app.state.sessions
    await store.revoke(session, now_of(request))
    response = RedirectResponse(url(request, "/signin"), status_code=303)
    response.delete_cookie(COOKIE, path=_cookie_path(request))
    return response
