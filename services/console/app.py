"""The console's FastAPI application: sign-in, pages, static files, error pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services import __version__
from services.common import db
from services.common.settings import Settings, load_settings
from services.console import charts, formatting
from services.console.client import ApiFailure
from services.console.config import CONSOLE_PORT, ConsoleSettings, load_console_settings
from services.console.pages import alerts, detectors, overview, people, schedules, signin
from services.console.sessions import COOKIE, Keys, SessionStore
from services.console.web import Forbidden, SignInRequired, page_headers, render, url

PLUGIN = "nself-console"
DEFAULT_PORT = CONSOLE_PORT
HERE = Path(__file__).resolve().parent
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None,
    console: ConsoleSettings | None = None,
    *,
    clock: Clock | None = None,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The console. `clock` replaces the wall clock (tests); `transports` the HTTP
    transport to a service (tests may speak ASGI to an app in process)."""
    settings = settings or load_settings()
    console = console or load_console_settings()
    keys = Keys(console.key_material(settings))
    transports = transports or {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.app_dsn, min_size=1, max_size=settings.db_pool_max)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        timeout = httpx.Timeout(30.0, connect=5.0)
        clients = {
            name: httpx.AsyncClient(
                base_url=base,
                transport=transports.get(name),
                limits=limits,
                timeout=timeout,
                trust_env=False,
            )
            for name, base in (("anomaly", console.anomaly_url), ("oncall", console.oncall_url))
        }
        app.state.anomaly_http = clients["anomaly"]
        app.state.oncall_http = clients["oncall"]
        app.state.sessions = SessionStore(pool, keys)
        try:
            yield
        finally:
            for client in clients.values():
                await client.aclose()
            await pool.close()

    app = FastAPI(
        title="ɳSentry console",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(fmt=formatting, chart=charts)
    templates.env.filters.update(formatting.FILTERS)
    app.state.templates = templates
    app.state.console = console
    app.state.settings = settings
    app.state.keys = keys
    app.state.clock = clock or utcnow
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (signin, overview, detectors, alerts, schedules, people):
        app.include_router(module.router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "plugin": PLUGIN, "version": __version__}

    @app.get("/ready", include_in_schema=False)
    async def ready(request: Request) -> Response:
        try:
            await request.app.state.sessions.pool.fetchval("SELECT 1")
        except Exception as exc:  # any failure: not ready, and why
            return JSONResponse(
                {"status": "not_ready", "error": exc.__class__.__name__}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]):  # type: ignore[no-untyped-def]
        return page_headers(await call_next(request))

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, _: Exception) -> Response:
        response = RedirectResponse(url(request, "/signin"), status_code=303)
        if request.cookies.get(COOKIE):
            response.delete_cookie(COOKIE, path=console.base or "/")
        return response

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _: Exception) -> Response:
        return render(
            request,
            "error.html",
            status_code=403,
            title="Forbidden",
            message="The form was sent without a valid CSRF token. Reload the page and try again.",
        )

    @app.exception_handler(ApiFailure)
    async def api_failure(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiFailure)
        if exc.status == 401:
            return await sign_in(request, exc)
        status = exc.status if exc.status in (403, 404, 409, 422) else 502
        title = {404: "Not found", 403: "Forbidden"}.get(status, "The service refused")
        return render(request, "error.html", status_code=status, title=title, message=exc.message)

    @app.exception_handler(httpx.TransportError)
    async def unreachable(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html",
            status_code=502,
            title="A service is unreachable",
            message=f"{exc.__class__.__name__}: the console could not reach a service.",
        )

    @app.exception_handler(404)
    async def not_found(request: Request, _: Exception) -> Response:
        if request.url.path.startswith("/static/"):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return render(
            request, "error.html", status_code=404, title="Not found", message="No such page."
        )

    return app
