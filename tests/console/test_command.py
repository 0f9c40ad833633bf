"""`nsentry up` serves the console (and `--no-console` does not); `nsentry serve console`."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import PLUGIN_SECRET
from tests.test_cli import BASE_ENV, NSENTRY, free_port, launch, stop, wait_ready

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(base: str, secret: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10, trust_env=False)
    form = client.get("/signin")
    token = CSRF.search(form.text)
    assert token, form.text
    answer = client.post(
        "/signin", data={"csrf_token": token.group(1), "secret": secret, "account": "primary"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return client


def test_up_serves_the_console(tmp_path: Path, data_dir: Path) -> None:
    ports = {name: free_port() for name in ("ANOMALY_PORT", "ONCALL_PORT", "CONSOLE_PORT")}
    env = {**BASE_ENV, **{k: str(v) for k, v in ports.items()}, "PLUGIN_SECRET": PLUGIN_SECRET}
    process = launch([*NSENTRY, "up", "--data-dir", str(data_dir)], env, tmp_path)
    console = f"http://127.0.0.1:{ports['CONSOLE_PORT']}"
    try:
        wait_ready([console, f"http://127.0.0.1:{ports['ANOMALY_PORT']}"], process, 90)
        client = sign_in(console, PLUGIN_SECRET)
        try:
            overview = client.get("/")
            assert overview.status_code == 200 and "<h1>Overview</h1>" in overview.text
        finally:
            client.close()
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert f"console        {console}" in output
    assert "Traceback" not in output


def test_up_without_the_console(tmp_path: Path, data_dir: Path) -> None:
    ports = {name: free_port() for name in ("ANOMALY_PORT", "ONCALL_PORT", "CONSOLE_PORT")}
    env = {**BASE_ENV, **{k: str(v) for k, v in ports.items()}, "PLUGIN_SECRET": PLUGIN_SECRET}
    process = launch(
        [*NSENTRY, "up", "--no-console", "--no-worker", "--data-dir", str(data_dir)], env, tmp_path
    )
    try:
        wait_ready([f"http://127.0.0.1:{ports['ONCALL_PORT']}"], process, 90)
        try:
            httpx.get(f"http://127.0.0.1:{ports['CONSOLE_PORT']}/health", timeout=2)
            served = True
        except httpx.TransportError:
            served = False
        assert not served
    finally:
        output = stop(process)
    assert "console        not served (--no-console)" in output


def test_serve_console(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {
        **BASE_ENV,
        "DATABASE_URL": database_url,
        "PLUGIN_SECRET": PLUGIN_SECRET,
        "NSELF_LICENSE_SKIP_VERIFY": "1",
        "PORT": str(port),
        "CONSOLE_ROOT_PATH": "/console",
    }
    process = launch([*NSENTRY, "serve", "console"], env, tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready([base], process, 60)
        page = httpx.get(f"{base}/signin", timeout=5)
        assert page.status_code == 200
        assert 'action="/console/signin"' in page.text  # links carry the gateway's prefix
        assert httpx.get(f"{base}/", timeout=5).headers["location"] == "/console/signin"
    finally:
        stop(process)


def test_up_runs_without_the_console_when_its_port_is_taken(tmp_path: Path, data_dir: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as held:
        taken = held.getsockname()[1]
        ports = {name: free_port() for name in ("ANOMALY_PORT", "ONCALL_PORT")}
        env = {**BASE_ENV, **{k: str(v) for k, v in ports.items()}, "CONSOLE_PORT": str(taken),
               "PLUGIN_SECRET": PLUGIN_SECRET}  # fmt: skip
        process = launch(
            [*NSENTRY, "up", "--no-worker", "--data-dir", str(data_dir)], env, tmp_path
        )
        try:
            wait_ready([f"http://127.0.0.1:{ports['ANOMALY_PORT']}"], process, 90)
        finally:
            output = stop(process)
    assert process.returncode == 0, output
    assert f"console        not served (port {taken} is in use; set CONSOLE_PORT)" in output
