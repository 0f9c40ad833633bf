"""The FastAPI application both services are built from.

It carries what every service shares: settings and the database pool on
`app.state`, migrations applied at start, the error envelope, the request-size
limit, Prometheus metrics, `/health`, `/ready`, `/metrics` and `GET /auth`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import __version__
from services.common import db, migrations
from services.common.auth import current_principal
from services.common.errors import envelope, install_error_handlers
from services.common.health import router as health_router
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.common.settings import Settings

log = logging.getLogger("nsentry")

# A hook run for the app's lifetime (background senders, pruners): entered after
# the pool exists, exited before it closes.
LifetimeHook = Callable[[FastAPI], AbstractAsyncContextManager[Any]]

PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/openapi.json", "/auth"})


class GuardMiddleware:
    """Pure ASGI: refuse bodies over the limit with 413 and record request metrics."""

    def __init__(self, app: ASGIApp, *, plugin: str, max_body_bytes: int) -> None:
        self.app = app
        self.plugin = plugin
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(send_and_record, self.max_body_bytes)
        elif declared is None and scope["method"] in {"POST", "PUT", "PATCH"}:
            # no Content-Length (chunked): read up to the limit, then replay
            body, over = await _read_limited(receive, self.max_body_bytes)
            if over:
                await _too_large(send_and_record, self.max_body_bytes)
            else:
                await self.app(scope, _replay(body, receive), send_and_record)
        else:
            await self.app(scope, receive, send_and_record)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        HTTP_REQUESTS.labels(self.plugin, method, template, str(status_holder["status"])).inc()
        HTTP_LATENCY.labels(self.plugin, method, template).observe(time.perf_counter() - started)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_limited(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _too_large(send: Send, limit: int) -> None:
    import json

    payload = json.dumps(
        envelope("payload_too_large", f"request body over the {limit}-byte limit")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


auth_router = APIRouter(tags=["auth"])


@auth_router.get(
    "/auth",
    summary="nginx auth_request: validate the bearer and return the Hasura session headers",
    responses={401: {"description": "missing or invalid bearer"}},
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


async def prepare_database(app: FastAPI) -> bool:
    """Apply pending migrations with the owner connection; remember why if it fails."""
    settings: Settings = app.state.settings
    try:
        conn = await db.connect(_dsn(settings))
        try:
            applied = await migrations.migrate_up(conn, settings.migrations_dir)
        finally:
            await conn.close()
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
) -> FastAPI:
    """A service app: shared plumbing plus the service's routers and lifetime hooks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await db.create_pool(
            _dsn(settings), min_size=0, max_size=settings.db_pool_max
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
    app.add_middleware(GuardMiddleware, plugin=plugin, max_body_bytes=settings.max_body_bytes)
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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
