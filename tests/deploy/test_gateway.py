"""The R3 gateway through a real nginx running the shipped template.

nginx (Debian's package, installed by the `nginx_binary` fixture when missing)
runs `deploy/nginx/templates/nsentry.conf.template` rendered for loopback ports,
in front of nself-anomaly and nself-oncall served by uvicorn in this test. A
valid Hasura JWT reaches the service as its own account with the plugin secret;
anything else is refused by nginx before it reaches the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request

from services.anomaly.app import create_app as create_anomaly
from services.common.auth import Caller
from services.oncall.app import create_app as create_oncall
from tests.conftest import JWT_HS_KEY, PLUGIN_SECRET, make_settings
from tests.deploy.support import (
    NGINX_TEMPLATE,
    NGINX_TEMPLATE_VARIABLES,
    REPO_ROOT,
    bound_socket,
    free_port,
    nginx_main_config,
    render_template,
    template_references,
)

CLAIMS = "https://hasura.io/jwt/claims"
SERVICES = ("anomaly", "oncall")
HITS: Counter[str] = Counter()

# A route added to the real apps for this test only: it shows what reached the
# service (path after prefix stripping, the principal, the headers nginx set).
echo = APIRouter()


@echo.api_route("/_gateway_echo/{rest:path}", methods=["GET", "POST"])
async def gateway_echo(rest: str, request: Request, caller: Caller) -> dict[str, Any]:
    HITS[request.app.state.plugin] += 1
    return {
        "plugin": request.app.state.plugin,
        "path": request.url.path,
        "query": request.url.query,
        "account": caller.account_id,
        "role": caller.role,
        "user": caller.user_id,
        "via": caller.via,
        "authorization": request.headers.get("authorization"),
        "x_source_account_id": request.headers.get("x-source-account-id"),
        "forwarded_prefix": request.headers.get("x-forwarded-prefix"),
    }


def hasura_jwt(
    account: str | None = "acct-a",
    *,
    key: str = JWT_HS_KEY,
    algorithm: str = "HS256",
    expires_in: int = 600,
    **claims: Any,
) -> str:
    session: dict[str, Any] = {
        "x-hasura-default-role": "user",
        "x-hasura-allowed-roles": ["user", "viewer"],
        "x-hasura-user-id": "u-1",
    }
    if account is not None:
        session["x-hasura-source-account-id"] = account
    session.update(claims)
    payload = {"sub": "u-1", "exp": int(time.time()) + expires_in, CLAIMS: session}
    return jwt.encode(payload, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class _Server(uvicorn.Server):
    """uvicorn inside the test's event loop; signals stay with pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Stack:
    gateway: str
    direct: dict[str, str]
    prefix: Path


@contextlib.asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[str]:
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if task.done():
                task.result()  # raises the startup failure
                raise RuntimeError("uvicorn stopped during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start in 20 s")
            await asyncio.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=15)
        sock.close()


def _nginx_log(prefix: Path) -> str:
    log = prefix / "error.log"
    return log.read_text()[-2000:] if log.exists() else ""


@pytest.fixture(scope="module")
async def stack(
    nginx_binary: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    settings = make_settings(database_url)
    apps = {"anomaly": create_anomaly(settings), "oncall": create_oncall(settings)}
    for app in apps.values():
        app.include_router(echo)
    async with _serve(apps["anomaly"]) as anomaly, _serve(apps["oncall"]) as oncall:
        prefix = tmp_path_factory.mktemp("nginx")
        port = free_port()
        rendered = render_template(
            NGINX_TEMPLATE.read_text(),
            {
                "NSENTRY_GATEWAY_PORT": f"127.0.0.1:{port}",
                "NSELF_ANOMALY_UPSTREAM": anomaly,
                "NSELF_ONCALL_UPSTREAM": oncall,
                "PLUGIN_SECRET": PLUGIN_SECRET,
            },
        )
        (prefix / "nsentry.conf").write_text(rendered)
        main = prefix / "nginx.conf"
        main.write_text(nginx_main_config(prefix, prefix / "nsentry.conf"))
        base = [nginx_binary, "-p", str(prefix), "-c", str(main), "-e", str(prefix / "error.log")]
        check = await asyncio.create_subprocess_exec(
            *base, "-t", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, check_err = await check.communicate()
        assert check.returncode == 0, f"nginx -t refused the rendered template:\n{check_err!r}"
        process = await asyncio.create_subprocess_exec(
            *base,
            "-g",
            "daemon off;",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        gateway = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=gateway, timeout=2) as client:
                deadline = time.monotonic() + 15
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"nginx exited: {_nginx_log(prefix)}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/health")).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"nginx did not answer: {_nginx_log(prefix)}")
                    await asyncio.sleep(0.05)
            yield Stack(
                gateway=gateway,
                direct={"anomaly": f"http://{anomaly}", "oncall": f"http://{oncall}"},
                prefix=prefix,
            )
        finally:
            if process.returncode is None:
                process.terminate()  # SIGTERM: nginx's fast shutdown
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=10) as c:
        yield c


def test_template_uses_exactly_the_documented_variables() -> None:
    assert template_references(NGINX_TEMPLATE.read_text()) == set(NGINX_TEMPLATE_VARIABLES)


def test_secret_that_would_break_the_config_is_refused() -> None:
    values = dict.fromkeys(NGINX_TEMPLATE_VARIABLES, "x")
    with pytest.raises(ValueError, match="PLUGIN_SECRET"):
        render_template(NGINX_TEMPLATE.read_text(), {**values, "PLUGIN_SECRET": 'a"; b'})


async def test_gateway_health_needs_no_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("service", SERVICES)
async def test_service_probes_pass_through_without_auth(
    client: httpx.AsyncClient, service: str
) -> None:
    health = await client.get(f"/nself-{service}/health")
    assert health.status_code == 200, health.text
    assert health.json()["plugin"] == f"nself-{service}"
    ready = await client.get(f"/nself-{service}/ready")
    assert ready.status_code == 200, ready.text


@pytest.mark.parametrize("service", SERVICES)
async def test_valid_jwt_reaches_the_service_as_its_account(
    client: httpx.AsyncClient, service: str
) -> None:
    response = await client.get(
        f"/nself-{service}/_gateway_echo/a/b?x=1", headers=bearer(hasura_jwt("acct-a"))
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["plugin"] == f"nself-{service}"
    assert seen["path"] == "/_gateway_echo/a/b"  # prefix stripped
    assert seen["query"] == "x=1"
    assert seen["forwarded_prefix"] == f"/nself-{service}"
    # the service saw the gateway's secret, not the client's JWT, and the session from /auth
    assert seen["authorization"] == f"Bearer {PLUGIN_SECRET}"
    assert seen["via"] == "secret"
    assert (seen["account"], seen["role"], seen["user"]) == ("acct-a", "user", "u-1")


async def test_each_account_arrives_as_itself(client: httpx.AsyncClient) -> None:
    for account in ("acct-a", "acct-b", "tenant:42"):
        response = await client.get(
            "/nself-anomaly/_gateway_echo/x", headers=bearer(hasura_jwt(account))
        )
        assert response.status_code == 200, response.text
        assert response.json()["account"] == account


async def test_client_cannot_choose_another_account(client: httpx.AsyncClient) -> None:
    headers = {
        **bearer(hasura_jwt("acct-a")),
        "X-Hasura-Source-Account-Id": "acct-b",
        "X-Source-Account-Id": "acct-b",
        "X-Hasura-User-Id": "someone-else",
    }
    response = await client.get("/nself-oncall/_gateway_echo/x", headers=headers)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["account"] == "acct-a"
    assert seen["user"] == "u-1"
    assert seen["x_source_account_id"] is None


async def test_requested_role_must_be_allowed_by_the_token(client: httpx.AsyncClient) -> None:
    token = hasura_jwt("acct-a")
    allowed = await client.get(
        "/nself-anomaly/_gateway_echo/x", headers={**bearer(token), "X-Hasura-Role": "viewer"}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["role"] == "viewer"
    refused = await client.get(
        "/nself-anomaly/_gateway_echo/x", headers={**bearer(token), "X-Hasura-Role": "admin"}
    )
    assert refused.status_code == 401


def _invalid_tokens() -> dict[str, dict[str, str]]:
    unsigned = jwt.encode(
        {"exp": int(time.time()) + 600, CLAIMS: {"x-hasura-source-account-id": "acct-a"}},
        key=None,
        algorithm="none",
    )
    return {
        "missing": {},
        "not a bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": bearer("not-a-jwt"),
        "wrong key": bearer(hasura_jwt(key="another-key-that-is-long-enough-0123456789")),
        "expired": bearer(hasura_jwt(expires_in=-60)),
        "alg none": bearer(unsigned),
        "no account claim": bearer(hasura_jwt(None)),
    }


@pytest.mark.parametrize("case", list(_invalid_tokens()))
@pytest.mark.parametrize("service", SERVICES)
async def test_invalid_bearer_is_refused_by_nginx(
    client: httpx.AsyncClient, service: str, case: str
) -> None:
    before = HITS[f"nself-{service}"]
    response = await client.post(
        f"/nself-{service}/_gateway_echo/x", headers=_invalid_tokens()[case], json={"a": 1}
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert HITS[f"nself-{service}"] == before, "a refused request reached the service"


@pytest.mark.parametrize("service", SERVICES)
async def test_service_port_refuses_requests_without_the_bearer(stack: Stack, service: str) -> None:
    direct = stack.direct[service]
    async with httpx.AsyncClient(base_url=direct, timeout=10) as raw:
        refused = await raw.get("/_gateway_echo/x", headers={"X-Hasura-Source-Account-Id": "a"})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        # without nginx, only the secret or a valid JWT opens the service
        wrong = await raw.get("/_gateway_echo/x", headers=bearer("guessed-secret"))
        assert wrong.status_code == 401
        ok = await raw.get("/_gateway_echo/x", headers=bearer(PLUGIN_SECRET))
        assert ok.status_code == 200


async def test_unknown_paths_get_the_error_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/somewhere-else")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_body_over_the_gateway_limit_is_413(stack: Stack) -> None:
    host, port = stack.gateway.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /nself-anomaly/api/v1/ingest HTTP/1.1\r\n"
            + f"Host: {host}\r\n".encode()
            + f"Authorization: Bearer {hasura_jwt()}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {17 * 1024 * 1024}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout=10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"


async def test_accounts_only_see_their_own_rows_through_the_gateway(
    client: httpx.AsyncClient,
) -> None:
    """Real routes: what each account creates through nginx, only it lists."""
    for account in ("gw-a", "gw-b"):
        headers = bearer(hasura_jwt(account))
        detector = await client.post(
            "/nself-anomaly/api/v1/detectors",
            headers=headers,
            json={"id": f"latency-{account}", "name": f"latency of {account}"},
        )
        assert detector.status_code == 201, detector.text
        person = await client.post(
            "/nself-oncall/api/v1/people",
            headers=headers,
            json={"id": f"ada-{account}", "name": f"Ada of {account}"},
        )
        assert person.status_code == 201, person.text
    for account in ("gw-a", "gw-b"):
        headers = bearer(hasura_jwt(account))
        detectors = await client.get("/nself-anomaly/api/v1/detectors", headers=headers)
        assert detectors.status_code == 200, detectors.text
        assert [d["id"] for d in detectors.json()["data"]] == [f"latency-{account}"]
        people = await client.get("/nself-oncall/api/v1/people", headers=headers)
        assert people.status_code == 200, people.text
        assert [p["id"] for p in people.json()["data"]] == [f"ada-{account}"]
        # the remote schema Hasura uses, reached the same way
        graph = await client.post(
            "/nself-oncall/graphql",
            headers=headers,
            json={"query": '{ policy(id: "none") { id } schedules { id } }'},
        )
        assert graph.status_code == 200, graph.text
        assert graph.json() == {"data": {"policy": None, "schedules": []}}


async def _run_healthcheck(*args: str, env: dict[str, str] | None = None) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO_ROOT / "deploy" / "healthcheck.py"),
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_container_healthcheck_script(stack: Stack, database_url: str) -> None:
    """deploy/healthcheck.py, as docker-compose.yml runs it in each container."""
    for direct in stack.direct.values():
        assert await _run_healthcheck(f"{direct}/ready") == 0
        assert await _run_healthcheck(f"{direct}/no-such-probe") == 1
    assert await _run_healthcheck("http://127.0.0.1:9/ready") == 1
    assert await _run_healthcheck("--database", env={"DATABASE_URL": database_url}) == 0
    unreachable = "postgresql://nobody@127.0.0.1:9/none"
    assert await _run_healthcheck("--database", env={"DATABASE_URL": unreachable}) == 1
    assert await _run_healthcheck("--what") == 2
