"""The console in docker-compose and behind the shipped nginx gateway at /console/
(a real nginx, installed when missing, in front of the real console)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from services.cli import build_parser
from services.console.config import ConsoleSettings
from services.console.sessions import COOKIE
from tests.clock import FakeClock
from tests.conftest import PLUGIN_SECRET, REPO_ROOT
from tests.console.stack import Stack, free_port, stack
from tests.deploy.conftest import nginx_binary  # noqa: F401 - the fixture
from tests.deploy.support import (
    NGINX_TEMPLATE,
    nginx_main_config,
    render_template,
    service_environment,
)
from tests.deploy.test_compose import example_env, services

LOCATIONS = REPO_ROOT / "deploy" / "nginx" / "console.locations"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_compose_runs_the_console_behind_the_gateway() -> None:
    every = services()
    console = every["nself-console"]
    assert console["build"]["dockerfile"] == "deploy/Dockerfile"
    assert console["command"] == ["nsentry", "serve", "console"]
    build_parser().parse_args(console["command"][1:])
    assert console["expose"] == ["3841"] and "ports" not in console
    assert "http://127.0.0.1:3841/ready" in console["healthcheck"]["test"]
    env = service_environment("nself-console", example_env())
    assert env["HOST"] == "0.0.0.0" and env["PORT"] == "3841"
    settings = ConsoleSettings(
        _env_file=None,  # type: ignore[call-arg]
        **{
            k.removeprefix("CONSOLE_").lower(): v
            for k, v in env.items()
            if k.startswith("CONSOLE_")
        },
    )
    assert settings.anomaly_url == "http://nself-anomaly:3842"
    assert settings.oncall_url == "http://nself-oncall:3840"
    assert settings.base == "/console"
    mounts = dict(v.split(":")[:2][::-1] for v in every["nginx"]["volumes"])
    assert (REPO_ROOT / mounts["/etc/nginx/nsentry/console.locations"]).resolve() == LOCATIONS
    assert "include /etc/nginx/nsentry/*.locations;" in NGINX_TEMPLATE.read_text()
    assert "nself-console" in every["nginx"]["depends_on"]


@pytest.fixture(scope="module")
async def site(database_url: str, clock: FakeClock) -> AsyncIterator[Stack]:
    """The stack with the console as compose runs it: under the gateway's /console/."""
    async with stack(database_url, clock, root_path="/console") as running:
        yield running


@pytest.fixture(scope="module")
async def gateway(site: Stack, nginx_binary: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> AsyncIterator[str]:  # fmt: skip
    prefix = tmp_path_factory.mktemp("nginx-console")
    console_port = site.console.rsplit(":", 1)[1]
    (prefix / "console.locations").write_text(
        LOCATIONS.read_text().replace("nself-console:3841", f"127.0.0.1:{console_port}")
    )
    port = free_port()
    rendered = render_template(
        NGINX_TEMPLATE.read_text(),
        {
            "NSENTRY_GATEWAY_PORT": f"127.0.0.1:{port}",
            "NSELF_ANOMALY_UPSTREAM": site.anomaly.removeprefix("http://"),
            "NSELF_ONCALL_UPSTREAM": site.oncall.removeprefix("http://"),
            "PLUGIN_SECRET": PLUGIN_SECRET,
        },
    ).replace("/etc/nginx/nsentry/", f"{prefix}/")
    (prefix / "nsentry.conf").write_text(rendered)
    (prefix / "nginx.conf").write_text(nginx_main_config(prefix, prefix / "nsentry.conf"))
    base = [nginx_binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
            "-e", str(prefix / "error.log")]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *base, "-g", "daemon off;", stderr=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            deadline = time.monotonic() + 15
            while True:
                assert process.returncode is None, (prefix / "error.log").read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "nginx did not answer"
                await asyncio.sleep(0.05)  # polling a process started outside the clock
        yield url
    finally:
        process.terminate()
        await process.wait()


async def test_console_behind_the_gateway(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway, timeout=10, trust_env=False) as client:
        assert (await client.get("/console")).headers["location"].endswith("/console/")
        first = await client.get("/console/")
        assert first.status_code == 303 and first.headers["location"] == "/console/signin"
        form = await client.get("/console/signin")
        assert (
            'action="/console/signin"' in form.text and "/console/static/console.css" in form.text
        )
        assert (await client.get("/console/static/console.css")).status_code == 200
        token = CSRF.search(form.text)
        assert token
        answer = await client.post(
            "/console/signin",
            data={"csrf_token": token.group(1), "secret": PLUGIN_SECRET, "account": "primary"},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith(COOKIE))
        assert "Path=/console" in cookie
        page = await client.get("/console/")
        assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
        assert 'href="/console/alerts"' in page.text
