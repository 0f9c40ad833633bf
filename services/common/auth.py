"""R3 auth: plugin bearer secret from a trusted gateway, or a Hasura JWT.

* Bearer equal to PLUGIN_SECRET (constant-time compare): the account comes from
  `X-Hasura-Source-Account-Id` (or `X-Source-Account-Id`), default `primary`;
  the role from `X-Hasura-Role`.
* Otherwise the bearer must be a JWT valid under HASURA_GRAPHQL_JWT_SECRET; the
  account is its `x-hasura-source-account-id` claim.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from services.common.errors import BadRequest, Unauthorized
from services.common.jwt_config import JwtConfig
from services.common.settings import Settings

DEFAULT_ACCOUNT = "primary"
ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
ACCOUNT_HEADERS = ("x-hasura-source-account-id", "x-source-account-id")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account every query is scoped to, the role and user."""

    account_id: str
    role: str
    user_id: str | None
    via: Literal["secret", "jwt"]


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, headers=_CHALLENGE)


def check_account_id(value: str) -> str:
    if not ACCOUNT_PATTERN.fullmatch(value):
        raise BadRequest(
            "source account id must be 1-128 characters of letters, digits and _ . : @ -",
            details={"source_account_id": value[:140]},
        )
    return value


def bearer_token(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization")
    if not value:
        raise _unauthorized("missing Authorization: Bearer header")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def is_plugin_secret(token: str, settings: Settings) -> bool:
    secret = settings.secret_bytes()
    # compare_digest runs in time independent of where the inputs differ
    return secret is not None and hmac.compare_digest(token.encode(), secret)


def principal_from_gateway(headers: Mapping[str, str]) -> Principal:
    account = next((headers[h] for h in ACCOUNT_HEADERS if headers.get(h)), DEFAULT_ACCOUNT)
    return Principal(
        account_id=check_account_id(account.strip()),
        role=headers.get("x-hasura-role") or "admin",
        user_id=headers.get("x-hasura-user-id"),
        via="secret",
    )


def decode_hasura_jwt(token: str, config: JwtConfig) -> dict[str, Any]:
    """Verify signature, expiry, audience and issuer; return the Hasura claims."""
    try:
        payload = jwt.decode(
            token,
            key=config.key,
            algorithms=[config.algorithm],  # one allowed algorithm: no 'none', no confusion
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway_seconds,
            options={"verify_aud": config.audience is not None, "require": ["exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"invalid token: {exc}") from None
    claims = config.claims_of(payload)
    if claims is None:
        raise _unauthorized("token carries no Hasura claims")
    return {str(k).lower(): v for k, v in claims.items()}


def principal_from_jwt(token: str, settings: Settings, headers: Mapping[str, str]) -> Principal:
    config = settings.jwt
    if config is None:
        raise _unauthorized("invalid bearer token")
    claims = decode_hasura_jwt(token, config)
    account = claims.get("x-hasura-source-account-id")
    if not isinstance(account, str) or not account:
        raise _unauthorized("token has no x-hasura-source-account-id claim")
    allowed = claims.get("x-hasura-allowed-roles") or []
    if not isinstance(allowed, list):  # a string would turn the check into a substring test
        allowed = []
    role = claims.get("x-hasura-default-role")
    requested = headers.get("x-hasura-role")
    if requested:
        if requested not in allowed and requested != role:
            raise _unauthorized(f"role {requested!r} is not allowed by the token")
        role = requested
    if not isinstance(role, str) or not role:
        raise _unauthorized("token has no x-hasura-default-role claim")
    user = claims.get("x-hasura-user-id")
    return Principal(
        account_id=check_account_id(account),
        role=role,
        user_id=str(user) if user is not None else None,
        via="jwt",
    )


def authenticate(headers: Mapping[str, str], settings: Settings) -> Principal:
    """The caller of a request, or Unauthorized (401 with the envelope)."""
    token = bearer_token(headers)
    if is_plugin_secret(token, settings):
        return principal_from_gateway(headers)
    return principal_from_jwt(token, settings, headers)


def require_secret(headers: Mapping[str, str], settings: Settings) -> None:
    """For Hasura actions and events: only the plugin secret is accepted."""
    if not is_plugin_secret(bearer_token(headers), settings):
        raise _unauthorized("invalid bearer token")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def current_principal(request: Request) -> Principal:
    principal = authenticate(request.headers, settings_of(request))
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
