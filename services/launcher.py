"""`nsentry up | migrate | serve | worker`: starting the services.

`up` is local mode: with no DATABASE_URL it starts the embedded Postgres under
`--data-dir`, generates a PLUGIN_SECRET when none is set, applies migrations and
runs nself-anomaly, nself-oncall and the on-call worker in one process until
Ctrl-C or SIGTERM, then stops everything and the database cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from services.common import db, migrations
from services.common.licence import check_startup
from services.common.settings import ConfigError, Settings, load_settings

log = logging.getLogger("nsentry")
T = TypeVar("T")


class _SharedLoopServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the launcher (several run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _run_served(main: Coroutine[Any, Any, T]) -> T:
    """Run long-lived servers on uvloop when it is installed (uvicorn[standard] brings it)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        return asyncio.run(main)
    return uvloop.run(main)


def _fail(message: str) -> int:
    print(f"nsentry: {message}", file=sys.stderr)
    return 2


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pgserver narrates every command it runs at INFO
    logging.getLogger("pgserver").setLevel(logging.WARNING)


@contextlib.contextmanager
def _database(settings: Settings, data_dir: str) -> Iterator[str]:
    """DATABASE_URL when set, else the embedded server (stopped on exit)."""
    if settings.database_url:
        yield settings.database_url
        return
    from services.common.embedded import EmbeddedPostgres

    print(f"nsentry: starting embedded PostgreSQL in {Path(data_dir).resolve()}", flush=True)
    server = EmbeddedPostgres(Path(data_dir))
    try:
        yield server.ensure_database()
    finally:
        server.stop()
        print("nsentry: embedded PostgreSQL stopped", flush=True)


async def _migrate_up(dsn: str, settings: Settings) -> list[migrations.Migration]:
    conn = await db.connect(dsn)
    try:
        return await migrations.migrate_up(
            conn, settings.migrations_dir, logins=settings.managed_logins()
        )
    finally:
        await conn.close()


def _guard(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Configuration and migration problems end in one line and a non-zero exit."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (ConfigError, migrations.MigrationError) as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"{exc.__class__.__name__}: {exc}")

    return guarded


def _worker_runner() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("services.oncall.worker")
    except ModuleNotFoundError as exc:
        if exc.name != "services.oncall.worker":
            raise
        return None
    return getattr(module, "run_worker", None)


def _port_in_use(host: str, ports: tuple[int, ...]) -> int | None:
    """The first of `ports` that cannot be listened on at `host`, if any."""
    for port in ports:
        try:
            socket.create_server((host, port)).close()  # SO_REUSEADDR, as uvicorn binds
        except OSError:
            return port
    return None


@_guard
def run_up(args: argparse.Namespace) -> int:
    os.environ["NSENTRY_LOCAL_MODE"] = "1"
    if not os.environ.get("PLUGIN_SECRET"):
        os.environ["PLUGIN_SECRET"] = secrets.token_urlsafe(32)
        generated = True
    else:
        generated = False
    settings = load_settings()
    _configure_logging(settings)
    taken = _port_in_use(settings.host, (settings.anomaly_port, settings.oncall_port))
    if taken is not None:  # before anything starts: the database may be another nsentry's
        return _fail(f"port {taken} is in use: is another nsentry running?")
    console = None
    skipped = "--no-console"
    if not getattr(args, "no_console", False):
        from services.console.config import load_console_settings

        console = load_console_settings()
        if _port_in_use(settings.host, (console.port,)) is not None:
            # the console is optional: the services run, and `up` says why it is missing
            skipped = f"port {console.port} is in use; set CONSOLE_PORT"
            console = None
    with _database(settings, args.data_dir) as dsn:
        settings = load_settings(database_url=dsn)
        applied = asyncio.run(_migrate_up(dsn, settings))
        print(f"nsentry: {len(applied)} migrations applied", flush=True)
        return _run_served(
            _serve_all(
                settings,
                worker=not args.no_worker,
                secret_generated=generated,
                console=console,
                console_skipped=skipped,
            )
        )


def _console_app(settings: Settings, console: Any) -> Any:
    """The console, talking to the two services `up` starts (on this host's ports)."""
    from services.console.app import create_app as create_console

    local = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    console = console.model_copy(
        update={
            "anomaly_url": f"http://{local}:{settings.anomaly_port}",
            "oncall_url": f"http://{local}:{settings.oncall_port}",
        }
    )
    return create_console(settings, console)


async def _serve_all(
    settings: Settings,
    *,
    worker: bool,
    secret_generated: bool,
    console: Any = None,
    console_skipped: str = "--no-console",
) -> int:
    from services.anomaly.app import create_app as create_anomaly
    from services.oncall.app import create_app as create_oncall

    servers = [
        _SharedLoopServer(
            uvicorn.Config(
                factory(settings),
                host=settings.host,
                port=port,
                log_level="warning",
                lifespan="on",
            )
        )
        for factory, port in (
            (create_anomaly, settings.anomaly_port),
            (create_oncall, settings.oncall_port),
        )
    ]
    if console is not None:
        servers.append(
            _SharedLoopServer(
                uvicorn.Config(
                    _console_app(settings, console),
                    host=settings.host,
                    port=console.port,
                    log_level="warning",
                    lifespan="on",
                )
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(server.serve()) for server in servers]
    runner = _worker_runner() if worker else None
    if runner is not None:
        tasks.append(asyncio.create_task(runner(settings, stop)))
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.05)
    if all(server.started for server in servers):
        secret = settings.plugin_secret.get_secret_value() if settings.plugin_secret else ""
        print(
            "nsentry: running (Ctrl-C to stop)\n"
            f"  nself-anomaly  http://{settings.host}:{settings.anomaly_port}\n"
            f"  nself-oncall   http://{settings.host}:{settings.oncall_port}\n"
            + (
                f"  console        http://{settings.host}:{console.port}\n"
                if console is not None
                else f"  console        not served ({console_skipped})\n"
            )
            + f"  worker         {'running' if runner else 'not running'}\n"
            + (
                f"  PLUGIN_SECRET  {secret}  (generated; set PLUGIN_SECRET to choose one)\n"
                if secret_generated
                else "  PLUGIN_SECRET  from the environment\n"
            ),
            flush=True,
        )
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    print("nsentry: stopping", flush=True)
    stop.set()
    for server in servers:
        server.should_exit = True
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        log.error("component failed: %r", failure)
    started = all(server.started for server in servers)
    return 0 if started and not failures else 1


@_guard
def run_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.database_url:
        os.environ["NSENTRY_LOCAL_MODE"] = "1"

    async def go(dsn: str) -> list[migrations.Migration]:
        conn = await db.connect(dsn)
        try:
            if args.down:
                return await migrations.migrate_down(conn, settings.migrations_dir, args.down)
            logins = settings.model_copy(update={"database_url": dsn}).managed_logins()
            return await migrations.migrate_up(conn, settings.migrations_dir, logins=logins)
        finally:
            await conn.close()

    with _database(settings, args.data_dir) as dsn:
        done = asyncio.run(go(dsn))
    verb = "rolled back" if args.down else "applied"
    for migration in done:
        print(f"{verb} {migration.version}_{migration.name}")
    print(f"nsentry: {len(done)} migrations {verb}")
    return 0


@_guard
def run_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    check_startup(settings)
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is required for `serve` (use `nsentry up` for local mode)")
    _configure_logging(settings)
    module = importlib.import_module(f"services.{args.service}.app")
    port = settings.port or module.DEFAULT_PORT
    if args.service == "console":
        from services.console.config import load_console_settings

        console = load_console_settings()
        port = settings.port or console.port
        app = module.create_app(settings, console)
    else:
        app = module.create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_level=settings.log_level,
        # behind the gateway's /console/: links and cookies carry the prefix themselves
        proxy_headers=True,
    )
    server = _SharedLoopServer(config)

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await server.serve()

    _run_served(go())
    return 0 if server.started else 1


@_guard
def run_inbound_email(args: argparse.Namespace) -> int:
    """Email-to-alert alone (the worker also runs it when INBOUND_EMAIL_PORT is set)."""
    settings = load_settings()
    check_startup(settings)
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is required for `inbound-email`")
    if settings.inbound_email_port is None:
        raise ConfigError("INBOUND_EMAIL_PORT is not set: email-to-alert is off")
    _configure_logging(settings)
    from services.oncall.integrations import inbound_email

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        pool = await db.create_pool(settings.app_dsn, role=None, min_size=1, max_size=4)
        try:
            async with inbound_email.serving(
                pool,
                host=settings.inbound_email_host,
                port=settings.inbound_email_port or 25,
                domain=settings.inbound_email_domain or "localhost",
            ):
                await stop.wait()
        finally:
            await pool.close()

    _run_served(go())
    return 0


@_guard
def run_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    check_startup(settings)
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is required for `worker` (use `nsentry up` for local mode)")
    _configure_logging(settings)
    runner = _worker_runner()
    if runner is None:
        return _fail("the on-call worker is not available in this build")

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner(settings, stop)

    _run_served(go())
    return 0
