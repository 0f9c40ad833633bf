"""The R3 auth matrix, through a real app on the real database."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter

from services.common.app import build_app
from services.common.auth import Caller
from tests.conftest import JWT_HS_KEY, PLUGIN_SECRET, make_settings, serve_app

CLAIMS = "https://hasura.io/jwt/claims"

whoami = APIRouter()


@whoami.get("/api/v1/whoami")
async def who(caller: Caller) -> dict[str, Any]:
    return {"account": caller.account_id, "role": caller.role, "user": caller.user_id}


def hasura_claims(account: str | None = "acct-a", **extra: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "x-hasura-default-role": "user",
        "x-hasura-allowed-roles": ["user", "viewer"],
        "x-hasura-user-id": "u-1",
    }
    if account is not None:
        claims["x-hasura-source-account-id"] = account
    claims.update(extra)
    return claims


def token(payload: dict[str, Any], key: Any = JWT_HS_KEY, algorithm: str = "HS256") -> str:
    payload = {"exp": int(time.time()) + 600, **payload}
    return jwt.encode(payload, key, algorithm=algorithm)


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public_pem


async def _client(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        plugin="nself-test",
        settings=make_settings(database_url, **overrides),
        description="auth test",
        routers=[whoami],
    )
    async with serve_app(app) as client:
        yield client


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(database_url):
        yield c


@pytest.fixture(scope="module")
async def path_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    secret = json.dumps(
        {"type": "HS256", "key": JWT_HS_KEY, "claims_namespace_path": "$.hasura.claims"}
    )
    async for c in _client(database_url, hasura_graphql_jwt_secret=secret):
        yield c


@pytest.fixture(scope="module")
async def rsa_client(
    database_url: str, rsa_keys: tuple[Any, str]
) -> AsyncIterator[httpx.AsyncClient]:
    secret = json.dumps({"type": "RS256", "key": rsa_keys[1]})
    async for c in _client(database_url, hasura_graphql_jwt_secret=secret):
        yield c


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def expect_401(client: httpx.AsyncClient, headers: dict[str, str], fragment: str) -> None:
    response = await client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert fragment in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_no_bearer(client: httpx.AsyncClient) -> None:
    await expect_401(client, {}, "missing Authorization")


async def test_not_a_bearer_scheme(client: httpx.AsyncClient) -> None:
    await expect_401(client, {"Authorization": f"Basic {PLUGIN_SECRET}"}, "Bearer")


async def test_wrong_secret(client: httpx.AsyncClient) -> None:
    await expect_401(client, bearer(PLUGIN_SECRET + "x"), "invalid token")


async def test_secret_without_account_header_is_primary(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/whoami", headers=bearer(PLUGIN_SECRET))
    assert response.status_code == 200
    assert response.json() == {"account": "primary", "role": "admin", "user": None}


@pytest.mark.parametrize("header", ["X-Hasura-Source-Account-Id", "X-Source-Account-Id"])
async def test_secret_with_account_header(client: httpx.AsyncClient, header: str) -> None:
    headers = {**bearer(PLUGIN_SECRET), header: "acct-b", "X-Hasura-Role": "user"}
    response = await client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"account": "acct-b", "role": "user", "user": None}


async def test_secret_with_malformed_account_is_400(client: httpx.AsyncClient) -> None:
    headers = {**bearer(PLUGIN_SECRET), "X-Hasura-Source-Account-Id": "a b;drop"}
    response = await client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


async def test_valid_hs256_jwt(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/whoami", headers=bearer(token({CLAIMS: hasura_claims("acct-a")}))
    )
    assert response.status_code == 200
    assert response.json() == {"account": "acct-a", "role": "user", "user": "u-1"}


async def test_jwt_cannot_pick_the_account_by_header(client: httpx.AsyncClient) -> None:
    headers = {
        **bearer(token({CLAIMS: hasura_claims("acct-a")})),
        "X-Hasura-Source-Account-Id": "acct-b",
    }
    response = await client.get("/api/v1/whoami", headers=headers)
    assert response.json()["account"] == "acct-a"


async def test_jwt_role_header_must_be_allowed(client: httpx.AsyncClient) -> None:
    good = {**bearer(token({CLAIMS: hasura_claims()})), "X-Hasura-Role": "viewer"}
    assert (await client.get("/api/v1/whoami", headers=good)).json()["role"] == "viewer"
    bad = {**bearer(token({CLAIMS: hasura_claims()})), "X-Hasura-Role": "admin"}
    await expect_401(client, bad, "not allowed")


async def test_jwt_under_claims_namespace_path(path_client: httpx.AsyncClient) -> None:
    nested = token({"hasura": {"claims": hasura_claims("acct-p")}})
    response = await path_client.get("/api/v1/whoami", headers=bearer(nested))
    assert response.status_code == 200
    assert response.json()["account"] == "acct-p"
    # the default namespace is not read when a path is configured
    flat = token({CLAIMS: hasura_claims("acct-p")})
    await expect_401(path_client, bearer(flat), "no Hasura claims")


async def test_rs256_jwt(rsa_client: httpx.AsyncClient, rsa_keys: tuple[Any, str]) -> None:
    signed = token({CLAIMS: hasura_claims("acct-r")}, key=rsa_keys[0], algorithm="RS256")
    response = await rsa_client.get("/api/v1/whoami", headers=bearer(signed))
    assert response.status_code == 200
    assert response.json()["account"] == "acct-r"
    # an HS256 token signed with the public key text must not pass (algorithm confusion)
    forged = jwt.encode(
        {"exp": int(time.time()) + 60, CLAIMS: hasura_claims("acct-r")},
        JWT_HS_KEY,
        algorithm="HS256",
    )
    await expect_401(rsa_client, bearer(forged), "invalid token")


async def test_expired_jwt(client: httpx.AsyncClient) -> None:
    expired = jwt.encode(
        {"exp": int(time.time()) - 60, CLAIMS: hasura_claims()}, JWT_HS_KEY, algorithm="HS256"
    )
    await expect_401(client, bearer(expired), "expired")


async def test_alg_none_jwt(client: httpx.AsyncClient) -> None:
    unsigned = jwt.encode(
        {"exp": int(time.time()) + 60, CLAIMS: hasura_claims()}, key=None, algorithm="none"
    )
    await expect_401(client, bearer(unsigned), "invalid token")


async def test_wrong_key_jwt(client: httpx.AsyncClient) -> None:
    other = token({CLAIMS: hasura_claims()}, key="another-key-of-sufficient-length-0123456789")
    await expect_401(client, bearer(other), "invalid token")


async def test_jwt_without_claims(client: httpx.AsyncClient) -> None:
    await expect_401(client, bearer(token({"sub": "x"})), "no Hasura claims")


async def test_jwt_without_account_claim(client: httpx.AsyncClient) -> None:
    await expect_401(
        client, bearer(token({CLAIMS: hasura_claims(account=None)})), "x-hasura-source-account-id"
    )


async def test_jwt_without_exp_is_refused(client: httpx.AsyncClient) -> None:
    no_exp = jwt.encode({CLAIMS: hasura_claims()}, JWT_HS_KEY, algorithm="HS256")
    await expect_401(client, bearer(no_exp), "exp")


async def test_auth_endpoint_returns_session_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth", headers=bearer(token({CLAIMS: hasura_claims("acct-a")})))
    assert response.status_code == 200
    assert response.headers["x-hasura-source-account-id"] == "acct-a"
    assert response.headers["x-hasura-role"] == "user"
    assert response.headers["x-hasura-user-id"] == "u-1"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer " + token({CLAIMS: hasura_claims()}, key="x" * 40)},
    ],
)
async def test_auth_endpoint_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/auth", headers=headers)
    assert response.status_code == 401
    assert "x-hasura-source-account-id" not in response.headers


async def test_health_needs_no_auth(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200


async def test_account_with_a_trailing_newline_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/whoami", headers=bearer(token({CLAIMS: hasura_claims("acct-a\n")}))
    )
    assert response.status_code == 400


async def test_allowed_roles_as_a_string_allows_nothing_extra(client: httpx.AsyncClient) -> None:
    claims = hasura_claims(**{"x-hasura-allowed-roles": "superuser"})
    headers = {**bearer(token({CLAIMS: claims})), "X-Hasura-Role": "super"}
    await expect_401(client, headers, "not allowed")
