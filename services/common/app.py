"""The FastAPI application both services are built from.

It carries what every service shares: settings and the database pool on
`app.state`, migrations applied at start, the error envelope, the request-size
limit, Prometheus metrics, `/health`, `/ready`, `/metrics` and `GET /auth`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services import __version__
from services.common import db, migrations
from services.common.auth import authenticate, current_principal
from services.common.errors import ApiError, exception_response, http_error, install_error_handlers
from services.common.guard import BODY_METHODS, GuardMiddleware
from services.common.health import router as health_router
from services.common.responses import document_standard_responses, errors
from services.common.settings import Settings

log = logging.getLogger("nsentry")

# A hook run for the app's lifetime (background senders, pruners): entered after
# the pool exists, exited before it closes.
LifetimeHook = Callable[[FastAPI], AbstractAsyncContextManager[Any]]

PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/openapi.json", "/auth"})


auth_router = APIRouter(tags=["auth"])


def _session_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


@auth_router.get(
    "/auth",
    summary="nginx auth_request: validate the bearer and return the Hasura session headers",
    response_class=Response,
    responses={
        200: {
            "description": "the bearer is valid; the session is in the headers (no body)",
            "content": None,
            "headers": {
                "X-Hasura-Role": _session_header("the caller's role"),
                "X-Hasura-User-Id": _session_header("the caller's user id (empty if none)"),
                "X-Hasura-Source-Account-Id": _session_header("the caller's account"),
            },
        },
        **errors(400, 401),
    },
)
async def auth(request: Request) -> Response:
    principal = await current_principal(request)
    headers = {
        "X-Hasura-Role": principal.role,
        "X-Hasura-Source-Account-Id": principal.account_id,
    }
    if principal.user_id is not None:
        headers["X-Hasura-User-Id"] = principal.user_id
    else:
        headers["X-Hasura-User-Id"] = ""
    return Response(status_code=200, headers=headers)


async def _no_route_without_a_bearer(request: Request, exc: Exception) -> Response:
    """404 and 405 from routing need a valid bearer like everything else: without one
    they answer 401, so that the route list does not leak (public paths excepted)."""
    assert isinstance(exc, StarletteHTTPException)
    bearer_less = exc.status_code == 405 and _carries_its_own_token(request)
    if exc.status_code in (404, 405) and request.url.path not in PUBLIC_PATHS and not bearer_less:
        try:
            authenticate(request.headers, request.app.state.settings)
        except ApiError as refused:
            return exception_response(refused, f"{request.method} {request.url.path}")
    if exc.status_code == 405:
        exc = StarletteHTTPException(405, headers={"Allow": allowed_methods(request)})
    return await http_error(request, exc)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _carries_its_own_token(request: Request) -> bool:
    """Whether the path is one whose routes take their own token instead of a bearer
    (their operations declare ``security: []``: signed links, calendar feeds): a method
    they do not take is a 405 without a bearer, as their documented methods answer
    without one. Read from the app's (cached) OpenAPI document."""
    state = request.app.state
    patterns: list[re.Pattern[str]] | None = getattr(state, "token_paths", None)
    if patterns is None:
        paths = request.app.openapi().get("paths", {})
        patterns = state.token_paths = [
            re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$")
            for path, operations in paths.items()
            if operations and all(op.get("security") == [] for op in operations.values())
        ]
    return any(p.match(request.url.path) for p in patterns)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route takes at this path
    (Starlette names only those of the first route that matched the path, and FastAPI
    makes one route per method). Asked of the routes themselves, method by method, so
    that included routers answer for their own routes."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def prepare_database(app: FastAPI) -> bool:
    """Apply pending migrations with the owner connection; remember why if it fails."""
    settings: Settings = app.state.settings
    try:
        conn = await db.connect(_dsn(settings))
        try:
            applied = await migrations.migrate_up(
                conn, settings.migrations_dir, logins=settings.managed_logins()
            )
        finally:
            await conn.close()
        await db.check_app_login(settings.app_dsn)
    except Exception as exc:  # keep serving /health and /ready while the database is away
        app.state.ready_error = f"migrations: {exc.__class__.__name__}: {str(exc)[:200]}"
        log.warning("database not ready: %s", app.state.ready_error)
        return False
    for migration in applied:
        log.info("applied migration %s_%s", migration.version, migration.name)
    app.state.ready = True
    app.state.ready_error = None
    return True


async def _keep_preparing(app: FastAPI) -> None:
    delay = 1.0
    while not await prepare_database(app):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 15.0)


def _dsn(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    return settings.database_url


def build_app(
    *,
    plugin: str,
    settings: Settings,
    description: str,
    routers: Sequence[APIRouter] = (),
    hooks: Sequence[LifetimeHook] = (),
    migrate_on_start: bool = True,
    form_paths: frozenset[str] = frozenset(),
) -> FastAPI:
    """A service app: shared plumbing plus the service's routers and lifetime hooks
    (`form_paths`: paths that take form bodies besides JSON, see `common.guard`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _dsn(settings)  # DATABASE_URL is required (the owner, which only migrates)
        # requests log in as the RLS-bound role itself (nsentry_app), never as the owner
        app.state.pool = await db.create_pool(
            settings.app_dsn, role=None, min_size=0, max_size=settings.db_pool_max
        )
        preparing: asyncio.Task[None] | None = None
        if migrate_on_start:
            if not await prepare_database(app):
                preparing = asyncio.create_task(_keep_preparing(app))
        else:
            app.state.ready = True
        try:
            async with AsyncExitStack() as stack:
                for hook in hooks:
                    await stack.enter_async_context(hook(app))
                yield
        finally:
            if preparing is not None:
                preparing.cancel()
            await asyncio.wait_for(app.state.pool.close(), timeout=10)

    app = FastAPI(
        title=plugin,
        version=__version__,
        description=description,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.plugin = plugin
    app.state.ready = False
    app.state.ready_error = None
    install_error_handlers(app)
    app.add_exception_handler(StarletteHTTPException, _no_route_without_a_bearer)
    app.add_middleware(
        GuardMiddleware,
        plugin=plugin,
        max_body_bytes=settings.max_body_bytes,
        form_paths=form_paths,
    )
    app.include_router(health_router)
    app.include_router(auth_router)
    for router in routers:
        app.include_router(router)
    _document_bearer(app)
    return app


def _document_bearer(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "PLUGIN_SECRET (with X-Hasura-Source-Account-Id) or a Hasura JWT",
            }
        }
        for path, operations in schema.get("paths", {}).items():
            if path in PUBLIC_PATHS:
                continue
            for operation in operations.values():
                operation.setdefault("security", [{"bearer": []}])
        document_standard_responses(schema, public=PUBLIC_PATHS, body_methods=BODY_METHODS)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
