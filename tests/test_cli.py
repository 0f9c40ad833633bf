"""The `nsentry` command as an operator runs it: real processes, real ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PLUGIN_SECRET, REPO_ROOT

# every test here runs the real `nsentry` command in a subprocess
pytestmark = pytest.mark.db

NSENTRY = [sys.executable, "-m", "services.cli"]
BASE_ENV = {
    key: value
    for key, value in os.environ.items()
    if key in {"PATH", "HOME", "LANG", "XDG_RUNTIME_DIR", "TMPDIR", "PYTHONPATH"}
}
BASE_ENV["PYTHONPATH"] = str(REPO_ROOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NSENTRY, *args],
        env={**BASE_ENV, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("service", ["anomaly", "oncall"])
def test_serve_refuses_to_start_without_plugin_secret(tmp_path: Path, service: str) -> None:
    result = run_cli(["serve", service], {"DATABASE_URL": "postgresql://x@/db"}, tmp_path)
    assert_one_line_refusal(result, "PLUGIN_SECRET is required")


def test_worker_refuses_to_start_without_plugin_secret(tmp_path: Path) -> None:
    result = run_cli(["worker"], {"DATABASE_URL": "postgresql://x@/db"}, tmp_path)
    assert_one_line_refusal(result, "PLUGIN_SECRET is required")


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("not_a_licence_key_but_long_enough_to_pass", "must start with one of"),
        ("nself_pro_short", "at least 32 characters"),
        ("nself_pro_" + "a" * 20 + " bad chars", "may contain only"),
    ],
)
def test_serve_refuses_a_malformed_licence(tmp_path: Path, key: str, fragment: str) -> None:
    env = {
        "DATABASE_URL": "postgresql://x@/db",
        "PLUGIN_SECRET": PLUGIN_SECRET,
        "NSELF_PLUGIN_LICENSE_KEY": key,
    }
    assert_one_line_refusal(run_cli(["serve", "anomaly"], env, tmp_path), fragment)


def test_serve_refuses_a_missing_licence(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://x@/db", "PLUGIN_SECRET": PLUGIN_SECRET}
    assert_one_line_refusal(
        run_cli(["serve", "anomaly"], env, tmp_path), "NSELF_PLUGIN_LICENSE_KEY is required"
    )


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PORT": "not-a-port"}, "PORT"),
        ({"HASURA_GRAPHQL_JWT_SECRET": "{nope"}, "not valid JSON"),
        ({"HASURA_GRAPHQL_JWT_SECRET": '{"type": "HS256", "key": "short"}'}, "at least 32"),
        ({"ONCALL_ALLOWED_DESTINATIONS": "10.0.0.0/99"}, "CIDR"),
    ],
)
def test_invalid_config_fails_fast_in_one_line(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    result = run_cli(["serve", "anomaly"], {"PLUGIN_SECRET": PLUGIN_SECRET, **env}, tmp_path)
    assert_one_line_refusal(result, fragment)
    assert "invalid configuration" in result.stderr


def launch(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``nsentry`` started in the background, its output (both streams) in one pipe."""
    return subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_ready(urls: list[str], process: subprocess.Popen[str], seconds: float) -> float:
    """Poll until every URL's /ready is 200; returns how long it took."""
    started = time.monotonic()
    pending = list(urls)
    while pending:
        if process.poll() is not None:
            raise AssertionError(f"exited early: {process.stdout.read() if process.stdout else ''}")
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not ready within {seconds}s: {pending}")
        for url in list(pending):
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    pending.remove(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)  # polling a real process started outside the test's clock
    return time.monotonic() - started


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return output


def test_up_runs_both_services_on_embedded_postgres_and_stops_cleanly(
    tmp_path: Path, data_dir: Path
) -> None:
    anomaly_port, oncall_port = free_port(), free_port()
    env = {**BASE_ENV, "ANOMALY_PORT": str(anomaly_port), "ONCALL_PORT": str(oncall_port)}
    process = launch([*NSENTRY, "up", "--data-dir", str(data_dir)], env, tmp_path)
    try:
        anomaly = f"http://127.0.0.1:{anomaly_port}"
        oncall = f"http://127.0.0.1:{oncall_port}"
        wait_ready([anomaly, oncall], process, 60)
        for url, plugin in ((anomaly, "nself-anomaly"), (oncall, "nself-oncall")):
            health = httpx.get(f"{url}/health", timeout=5).json()
            assert health["status"] == "ok" and health["db"] == "ok"
            assert health["plugin"] == plugin
            assert httpx.get(f"{url}/auth", timeout=5).status_code == 401
    finally:
        output = stop(process)
    assert process.returncode == 0, output
    assert "PLUGIN_SECRET" in output and "(generated" in output
    assert "embedded PostgreSQL stopped" in output
    assert "Traceback" not in output
    # the cluster is really down: its pid file is gone
    assert not (data_dir / "pg" / "postmaster.pid").exists()


def test_a_second_up_says_the_port_is_taken_and_touches_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    """Issue 12, item 11: one line and exit 2, and no embedded database is started (or
    stopped: it may be the running nsentry's)."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        taken = held.getsockname()[1]
        env = {**BASE_ENV, "ANOMALY_PORT": str(free_port()), "ONCALL_PORT": str(taken)}
        result = subprocess.run(
            [*NSENTRY, "up", "--data-dir", str(data_dir)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"nsentry: port {taken} is in use: is another nsentry running?"
    assert result.stdout == ""
    assert not (data_dir / "pg").exists()


def test_up_uses_the_given_secret(tmp_path: Path, data_dir: Path) -> None:
    anomaly_port, oncall_port = free_port(), free_port()
    env = {
        **BASE_ENV,
        "ANOMALY_PORT": str(anomaly_port),
        "ONCALL_PORT": str(oncall_port),
        "PLUGIN_SECRET": PLUGIN_SECRET,
    }
    process = launch([*NSENTRY, "up", "--data-dir", str(data_dir)], env, tmp_path)
    try:
        url = f"http://127.0.0.1:{anomaly_port}"
        wait_ready([url], process, 60)
        authed = httpx.get(
            f"{url}/auth", headers={"Authorization": f"Bearer {PLUGIN_SECRET}"}, timeout=5
        )
        assert authed.status_code == 200
        assert authed.headers["x-hasura-source-account-id"] == "primary"
    finally:
        output = stop(process)
    assert process.returncode == 0
    assert PLUGIN_SECRET not in output  # a secret from the environment is never printed


def test_serve_starts_with_full_config(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {
        **BASE_ENV,
        "DATABASE_URL": database_url,
        "PLUGIN_SECRET": PLUGIN_SECRET,
        "NSELF_PLUGIN_LICENSE_KEY": "nself_pro_" + "k" * 30,
        "PORT": str(port),
    }
    process = launch([*NSENTRY, "serve", "oncall"], env, tmp_path)
    try:
        wait_ready([f"http://127.0.0.1:{port}"], process, 30)
    finally:
        stop(process)
    assert process.returncode == 0


def test_only_the_bench_command_loads_the_benchmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark module that fails to import breaks `nsentry bench`, nothing else."""
    from services import cli

    real_import = cli.importlib.import_module

    def guarded(name: str) -> object:
        if name.startswith("bench"):
            raise RuntimeError(f"{name} is broken")
        return real_import(name)

    monkeypatch.setattr(cli.importlib, "import_module", guarded)
    args = cli.build_parser(with_benchmarks=False).parse_args(["migrate", "--down", "1"])
    assert args.command == "migrate" and args.down == 1
    with pytest.raises(RuntimeError, match="is broken"):
        cli.main(["bench", "nab", "--help"])
