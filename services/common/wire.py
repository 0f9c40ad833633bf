"""A POST route for a wire format of its own, answered ahead of the request guard.

The guard (``common.guard``) takes JSON bodies only; a receiver whose clients send
their own media type (remote write's snappy protobuf, OTLP's protobuf or gzip) is
answered by a raw ASGI shim ahead of it, with the guard's own pieces: the body
limit and its 413, request metrics, authentication and the error envelope. A
subclass says its ``path``, which media it takes (``refuse``: the 415, or None)
and what it does with the body (``handle``); its documented route serves the same
handler for the OpenAPI document.

The order of the answers: 413 for a declared Content-Length over the limit, then
401 without a valid bearer (headers only: nothing else is said to a stranger), then
415, then the body is read (413 past the limit), then ``handle``. Any other method
on the path is a 405 (``Allow: POST``) to an authenticated caller, 401 to anyone else.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.auth import authenticate
from services.common.errors import error_response, exception_response
from services.common.guard import body_headers, read_body, record_request, too_large


class WireShim:
    """Pure ASGI: ``POST <path>`` answered by ``handle`` ahead of the guard; anything
    else goes down the stack."""

    path = ""

    def __init__(self, app: ASGIApp, *, service_app: FastAPI, plugin: str) -> None:
        self.app = app
        self.service_app = service_app
        self.plugin = plugin

    def refuse(self, headers: Headers, media: bytes | None) -> Response | None:
        """The 415 for a body this route does not take (the body is not read yet)."""
        raise NotImplementedError

    async def handle(self, state: Any, account: str, headers: Headers, body: bytes) -> Response:
        """The answer to an authenticated request with a body of an accepted media type."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive_: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) != self.path:
            await self.app(scope, receive_, send)
            return
        started = time.perf_counter()
        if scope["method"] == "POST":
            response = await self._answer(scope, receive_)
        else:  # ahead of the guard, whose 415 for a non-JSON body would hide the 405
            response = self._other_method(scope)
        await response(scope, receive_, send)
        record_request(self.plugin, scope["method"], self.path, response.status_code, started)

    def _other_method(self, scope: Scope) -> Response:
        """405 (Allow: POST) to a caller with a valid bearer, 401 to anyone else."""
        try:
            authenticate(Headers(scope=scope), self.service_app.state.settings)
        except Exception as exc:
            return exception_response(exc, f"{scope['method']} {self.path}")
        return error_response(
            405, "method_not_allowed", "Method Not Allowed", None, {"Allow": "POST"}
        )

    async def _answer(self, scope: Scope, receive_: Receive) -> Response:
        state = self.service_app.state
        limit = state.settings.max_body_bytes
        try:
            declared, media = body_headers(scope)
            if declared is not None and declared > limit:
                return too_large(limit)
            headers = Headers(scope=scope)
            # the bearer first (headers only): without one, nothing else is said (401)
            account = authenticate(headers, state.settings).account_id
            refusal = self.refuse(headers, media)
            if refusal is not None:
                return refusal
            body = await read_body(receive_, limit)
            if body is None:
                return too_large(limit)
            return await self.handle(state, account, headers, body)
        except Exception as exc:
            return exception_response(exc, f"POST {self.path}")


def unsupported_media_type(
    message: str,
    *,
    given: str | None,
    accepted: list[str],
    encodings: list[str],
    close: bool,
) -> Response:
    """A wire route's 415: ``message``, the Content-Type given (None: none) and the media
    types and encodings it takes; the connection closed when the body was not read."""
    return error_response(
        415,
        "unsupported_media_type",
        message,
        {"content_type": given, "accepted": accepted, "content_encoding": encodings},
        {"connection": "close"} if close else None,
    )


def route_path(scope: Scope) -> str:
    """The request's path below the app's root path."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
